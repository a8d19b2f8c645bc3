"""Passkeys (W3C WebAuthn Level 3) at the JSON endpoints that passkey.js calls.

Covered here: the registration and authentication options (5.4, 5.5), refusal of garbage,
unknown, replayed or cloned credentials with a clear JSON error (never a 500), single-use
challenges, CSRF on the JSON calls, and a ceremony at the protocol level with a software
authenticator (ES256 key, "none" attestation, 7.1 and 7.2) so that a passkey login really
creates a session with amr hwk + mfa (RFC 8176).

Not covered: passkey.js itself with a real browser authenticator (navigator.credentials,
platform UI); that needs a browser test with a virtual authenticator (e.g. Chrome DevTools
WebAuthn domain) and is left to the end-to-end suite. Note that browsers refuse an IP address
as RP ID, so such a test must run with ISSUER on `localhost` (or set WEBAUTHN_RP_ID).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import ISSUER
from tests.helpers import (
    authorize_params,
    csrf_token,
    exchange,
    login,
    pkce_pair,
    query_of,
    register_client,
)

RP_ID = "127.0.0.1"  # host of ISSUER (WEBAUTHN_RP_ID unset)
ORIGIN = ISSUER


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cbor_bytes(raw: bytes) -> bytes:
    if len(raw) < 24:
        return bytes([0x40 + len(raw)]) + raw
    if len(raw) < 256:
        return b"\x58" + bytes([len(raw)]) + raw
    return b"\x59" + struct.pack(">H", len(raw)) + raw


class SoftAuthenticator:
    """A software passkey: an ES256 key pair, "none" attestation, user verification on.
    Hand-encoded CBOR keeps it independent of any WebAuthn client library."""

    def __init__(self, rp_id: str = RP_ID, origin: str = ORIGIN):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.rp_id, self.origin = rp_id, origin
        self.sign_count = 0

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return (bytes.fromhex("a5010203262001215820") + numbers.x.to_bytes(32, "big") +
                bytes.fromhex("225820") + numbers.y.to_bytes(32, "big"))

    def _auth_data(self, flags: int, attested: bytes = b"") -> bytes:
        return (hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags]) +
                struct.pack(">I", self.sign_count) + attested)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict) -> dict:
        """navigator.credentials.create() for the given registration options."""
        attested = (b"\x00" * 16 + struct.pack(">H", len(self.credential_id)) +
                    self.credential_id + self.cose_public_key())
        auth_data = self._auth_data(0x45, attested)  # UP | UV | AT
        attestation = (b"\xa3" + b"\x63fmt" + b"\x64none" + b"\x67attStmt" + b"\xa0" +
                       b"\x68authData" + _cbor_bytes(auth_data))
        return {"id": b64(self.credential_id), "rawId": b64(self.credential_id),
                "type": "public-key", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64(self._client_data("webauthn.create",
                                                                     options["challenge"])),
                             "attestationObject": b64(attestation),
                             "transports": ["internal"]}}

    def get(self, options: dict, user_handle: bytes, flags: int = 0x05) -> dict:
        """navigator.credentials.get(): an assertion signed over authData || H(clientData)."""
        self.sign_count += 1
        auth_data = self._auth_data(flags)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return {"id": b64(self.credential_id), "rawId": b64(self.credential_id),
                "type": "public-key", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64(client_data),
                             "authenticatorData": b64(auth_data), "signature": b64(signature),
                             "userHandle": b64(user_handle)}}


def _csrf_header(client, page: str = "/login") -> dict:
    return {"X-CSRFToken": csrf_token(client.get(page).text)}


def _post(client, path: str, body=None, headers=None, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body if body is not None else {})
    return client.post(path, data=data, content_type="application/json",
                       headers=headers or _csrf_header(client))


def _assert_passkey_error(response, status: int):
    assert response.status_code == status, (response.status_code, response.data[:200])
    assert response.mimetype == "application/json"
    assert response.json["error"] == "passkey_failed"
    assert isinstance(response.json["message"], str) and response.json["message"]
    assert "idp_session=" not in "".join(response.headers.getlist("Set-Cookie"))


def _register(client, authenticator: SoftAuthenticator) -> dict:
    headers = _csrf_header(client, "/account")
    options = _post(client, "/account/passkeys/options", headers=headers)
    assert options.status_code == 200
    response = _post(client, "/account/passkeys/verify", authenticator.create(options.json),
                     headers=headers)
    assert response.status_code == 200 and response.json == {"ok": True}, response.json
    return options.json


# -- options -------------------------------------------------------------------------------

def test_login_options_answer_a_fresh_challenge(client):
    """WebAuthn 5.5: options for navigator.credentials.get(), user verification required."""
    headers = _csrf_header(client)
    first = _post(client, "/login/passkey/options", headers=headers)
    second = _post(client, "/login/passkey/options", headers=headers)
    assert first.status_code == 200 and first.mimetype == "application/json"
    assert first.json["rpId"] == RP_ID
    assert first.json["userVerification"] == "required"
    assert len(unb64(first.json["challenge"])) >= 16
    assert first.json["challenge"] != second.json["challenge"]


def test_registration_options_need_a_signed_in_citizen(client):
    response = _post(client, "/account/passkeys/options")
    _assert_passkey_error(response, 401)


def test_registration_options_for_a_signed_in_citizen(client):
    """WebAuthn 5.4: discoverable credential (resident key) with user verification."""
    login(client)
    response = _post(client, "/account/passkeys/options", headers=_csrf_header(client,
                                                                               "/account"))
    assert response.status_code == 200
    options = response.json
    assert options["rp"]["id"] == RP_ID
    assert options["user"]["name"] == "Nguyễn Thị Minh Anh"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
    assert options["excludeCredentials"] == []


def test_json_calls_without_csrf_token_get_a_json_error(client):
    """The JSON endpoints refuse a cross-site call like the forms do, in JSON."""
    client.get("/login")
    response = client.post("/login/passkey/options", data="{}",
                           content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/json" and response.json["error"]


# -- garbage is refused clearly --------------------------------------------------------------

def test_login_verify_without_options_is_refused(client):
    _assert_passkey_error(_post(client, "/login/passkey/verify", {"id": "x"}), 400)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b"null", b'"id"', b'{"id": 5}',
                                 b'{"id": ["a"]}', b'{"id": "unknown-credential"}',
                                 b'{"id": "' + b"A" * 5000 + b'"}', b"\xff\xfe\x00",
                                 b'{"id": "x", "response": {"clientDataJSON": 1}}'])
def test_login_verify_refuses_garbage_credentials(client, raw):
    """A credential we do not know is refused: 401 JSON `passkey_failed`, no session."""
    headers = _csrf_header(client)
    assert _post(client, "/login/passkey/options", headers=headers).status_code == 200
    _assert_passkey_error(_post(client, "/login/passkey/verify", raw=raw, headers=headers), 401)
    assert client.get("/account").status_code == 302


def test_challenge_is_single_use(client):
    """A failed attempt consumes the challenge: no retrying against the same one."""
    headers = _csrf_header(client)
    _post(client, "/login/passkey/options", headers=headers)
    _post(client, "/login/passkey/verify", {"id": "unknown"}, headers=headers)
    _assert_passkey_error(_post(client, "/login/passkey/verify", {"id": "unknown"},
                                headers=headers), 400)


@pytest.mark.parametrize("raw", [b"", b"{}", b"not json", b'{"id": "x", "rawId": "x"}',
                                 b'{"response": {"attestationObject": "!!!"}}'])
def test_registration_verify_refuses_garbage(app, client, raw):
    login(client)
    headers = _csrf_header(client, "/account")
    _post(client, "/account/passkeys/options", headers=headers)
    response = _post(client, "/account/passkeys/verify", raw=raw, headers=headers)
    assert response.status_code == 400 and response.json["error"] == "passkey_failed"
    with app.app_context():
        from idp.extensions import db
        from idp.models import WebAuthnCredential

        assert db.session.scalar(db.select(db.func.count()).select_from(WebAuthnCredential)) == 0


def _stored_credential(app, authenticator: SoftAuthenticator, public_key: bytes | None = None,
                       sign_count: int = 0) -> bytes:
    """Store a passkey for the demo citizen; returns the user handle (account id)."""
    with app.app_context():
        from idp.accounts.authn import find_account
        from idp.extensions import db
        from idp.models import WebAuthnCredential

        account = find_account("001199000001")
        db.session.add(WebAuthnCredential(
            account_id=account.id, credential_id=b64(authenticator.credential_id),
            public_key=b64(public_key if public_key is not None
                           else authenticator.cose_public_key()),
            sign_count=sign_count, name="test"))
        db.session.commit()
        return account.id.encode()


json_junk = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                         lambda inner: st.lists(inner, max_size=3) |
                         st.dictionaries(st.text(max_size=10), inner, max_size=3),
                         max_leaves=8)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_known_credential_with_garbage_assertion_is_refused(app, data):
    """Fuzz the verification of a registered credential: garbage client data, authenticator
    data, signatures and stored keys all end in 401 `passkey_failed`, never a 500."""
    client = app.test_client()
    authenticator = SoftAuthenticator()
    bad_key = data.draw(st.one_of(st.just(None), st.binary(max_size=80)), label="stored key")
    user_handle = _stored_credential(app, authenticator, bad_key)
    headers = _csrf_header(client)
    options = _post(client, "/login/passkey/options", headers=headers).json
    genuine = authenticator.get(options, user_handle)
    field = st.one_of(st.binary(max_size=80).map(b64), st.just("!!!"), json_junk)
    changes = data.draw(st.dictionaries(
        st.sampled_from(["clientDataJSON", "authenticatorData", "signature", "userHandle"]),
        field, min_size=1), label="changed response fields")
    genuine["response"].update(changes)
    top = data.draw(st.dictionaries(st.sampled_from(["rawId", "type", "authenticatorAttachment"]),
                                    json_junk, max_size=2), label="changed top-level fields")
    genuine.update(top)
    response = _post(client, "/login/passkey/verify", genuine, headers=headers)
    assert response.status_code < 500
    # Leaving out optional members (userHandle, authenticatorAttachment) changes nothing.
    harmless = bad_key is None and changes == {"userHandle": None} and \
        top in ({}, {"authenticatorAttachment": None})
    if not harmless:
        _assert_passkey_error(response, 401)
    with app.app_context():  # one credential per example: clean up for the next one
        from idp.extensions import db
        from idp.models import WebAuthnCredential

        db.session.execute(db.delete(WebAuthnCredential))
        db.session.commit()


# -- ceremonies with a software authenticator -----------------------------------------------

def test_register_then_sign_in_with_a_passkey(app, client):
    """WebAuthn 7.1 then 7.2: the registered passkey signs the citizen in, with no ID number
    or password typed; the account page counts it."""
    login(client)
    authenticator = SoftAuthenticator()
    registration = _register(client, authenticator)
    client.get("/lang/en")
    assert "Passkeys: 1" in client.get("/account").text
    with app.app_context():
        from idp.extensions import db
        from idp.models import WebAuthnCredential

        row = db.session.scalar(db.select(WebAuthnCredential))
        assert row.credential_id == b64(authenticator.credential_id)
    again = _post(client, "/account/passkeys/options", headers=_csrf_header(client, "/account"))
    assert again.json["excludeCredentials"][0]["id"] == b64(authenticator.credential_id)

    browser = app.test_client()
    headers = _csrf_header(browser)
    options = _post(browser, "/login/passkey/options", headers=headers).json
    assertion = authenticator.get(options, unb64(registration["user"]["id"]))
    response = _post(browser, "/login/passkey/verify", assertion, headers=headers)
    assert response.status_code == 200 and response.json == {"ok": True, "next": "/account"}
    assert browser.get("/account").status_code == 200


def test_passkey_login_gives_amr_hwk_and_mfa(app, client):
    """RFC 8176: a user-verified passkey is a hardware key and counts as multi-factor."""
    authenticator = SoftAuthenticator()
    user_handle = _stored_credential(app, authenticator)
    rp = register_client(app, first_party=True)
    verifier, challenge = pkce_pair()
    start = client.get("/authorize", query_string=authorize_params(
        rp, code_challenge=challenge, code_challenge_method="S256"))
    interaction = query_of(start.headers["Location"])["interaction"]
    headers = _csrf_header(client, start.headers["Location"])
    options = _post(client, "/login/passkey/options", headers=headers).json
    response = client.post(f"/login/passkey/verify?interaction={interaction}",
                           data=json.dumps(authenticator.get(options, user_handle)),
                           content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert response.json["next"].startswith("/authorize/resume")
    callback = query_of(client.get(response.json["next"]).headers["Location"])
    tokens = exchange(client, rp, callback["code"], verifier).json
    keyset = KeySet.import_key_set(client.get("/jwks").json)
    amr = jwt.decode(tokens["id_token"], keyset).claims["amr"]
    assert "hwk" in amr and "mfa" in amr and "pwd" not in amr


def test_assertion_without_user_verification_is_refused(app, client):
    """The options require user verification; an assertion with UV off is not enough."""
    authenticator = SoftAuthenticator()
    user_handle = _stored_credential(app, authenticator)
    headers = _csrf_header(client)
    options = _post(client, "/login/passkey/options", headers=headers).json
    assertion = authenticator.get(options, user_handle, flags=0x01)  # UP only
    _assert_passkey_error(_post(client, "/login/passkey/verify", assertion, headers=headers),
                          401)


def test_replayed_assertion_is_refused(app, client):
    """The challenge is single-use: a captured assertion cannot be sent again."""
    authenticator = SoftAuthenticator()
    user_handle = _stored_credential(app, authenticator)
    headers = _csrf_header(client)
    options = _post(client, "/login/passkey/options", headers=headers).json
    assertion = authenticator.get(options, user_handle)
    assert _post(client, "/login/passkey/verify", assertion, headers=headers).status_code == 200
    other = app.test_client()
    other_headers = _csrf_header(other)
    _post(other, "/login/passkey/options", headers=other_headers)
    _assert_passkey_error(_post(other, "/login/passkey/verify", assertion,
                                headers=other_headers), 401)


def test_user_handle_of_another_account_is_refused(app, client):
    """WebAuthn 7.2 step 6: the userHandle, when present, must be the credential's owner."""
    authenticator = SoftAuthenticator()
    _stored_credential(app, authenticator)
    headers = _csrf_header(client)
    options = _post(client, "/login/passkey/options", headers=headers).json
    assertion = authenticator.get(options, b"00000000-0000-0000-0000-000000000000")
    _assert_passkey_error(_post(client, "/login/passkey/verify", assertion, headers=headers),
                          401)


def test_cloned_authenticator_is_refused(app, client):
    """WebAuthn 7.2 step 21: a signature counter that goes backwards signals a clone."""
    authenticator = SoftAuthenticator()
    user_handle = _stored_credential(app, authenticator, sign_count=50)
    headers = _csrf_header(client)
    options = _post(client, "/login/passkey/options", headers=headers).json
    _assert_passkey_error(_post(client, "/login/passkey/verify",
                                authenticator.get(options, user_handle), headers=headers), 401)


def test_passkey_for_another_site_is_refused(app, client):
    """Phishing resistance: an assertion made for another origin or RP ID does not verify."""
    for authenticator in (SoftAuthenticator(origin="https://dinhdanh-login.example.com"),
                          SoftAuthenticator(rp_id="dinhdanh-login.example.com")):
        user_handle = _stored_credential(app, authenticator)
        headers = _csrf_header(client)
        options = _post(client, "/login/passkey/options", headers=headers).json
        _assert_passkey_error(_post(client, "/login/passkey/verify",
                                    authenticator.get(options, user_handle), headers=headers),
                              401)


def test_locked_account_cannot_use_its_passkey(app, client):
    authenticator = SoftAuthenticator()
    user_handle = _stored_credential(app, authenticator)
    with app.app_context():
        from idp.accounts.authn import find_account
        from idp.extensions import db

        find_account("001199000001").status = "locked"
        db.session.commit()
    headers = _csrf_header(client)
    options = _post(client, "/login/passkey/options", headers=headers).json
    _assert_passkey_error(_post(client, "/login/passkey/verify",
                                authenticator.get(options, user_handle), headers=headers), 403)
