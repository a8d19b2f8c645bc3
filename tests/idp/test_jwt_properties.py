"""Property-based tests of every JWT the IdP parses from outside: private_key_jwt client
assertions at /token (RFC 7523), id_token_hint at /logout and /authorize (OIDC Core 3.1.2.1,
RP-Initiated Logout 2) and the register's Security Event Tokens at /ekyc/register-events
(RFC 8417 / RFC 8935). Request objects have their own file (tests/idp/oauth2/
test_request_object_properties.py).

tests/idp/test_fuzz.py sends a fixed list of forgeries (alg none, HS256 with the public key,
wrong kid, expired...). Here hypothesis generates them: a genuine token with any one byte of its
header, payload or signature changed, cut at any point, or with random headers (alg, kid, typ,
crit), random JSON segments and huge sizes. Each must be refused with the endpoint's documented
error, never a 500, and never do what the genuine token does (sign in, sign out, redirect).
"""

from __future__ import annotations

import base64
import json
import secrets
import time

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.conftest import ISSUER
from tests.helpers import authorize_params, full_login, query_of, register_client
from tests.idp.test_fuzz import TRACEBACK_MARKERS, Keys, _assertion_claims, _b64, _sign

PROPERTIES = settings(max_examples=40, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_FORM = {"grant_type": "client_credentials", "scope": "openid"}
BYE = "https://portal-a.example.vn/bye"
SET_ERRORS = {"invalid_request", "invalid_key", "invalid_issuer", "invalid_audience",
              "authentication_failed"}  # RFC 8935 2.4
REGISTER_URL = "http://127.0.0.1:9"
STATUS_EVENT = "urn:dinhdanh:register:status"


# -- strategies ----------------------------------------------------------------------------------

def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def mutate(token: str, segment: int, index: int, xor: int) -> str:
    """`token` with one byte of one segment (decoded) changed: never the same bytes again."""
    parts = token.split(".")
    raw = bytearray(_unb64(parts[segment]))
    raw[index % len(raw)] ^= xor
    parts[segment] = _b64(bytes(raw))
    return ".".join(parts)


one_byte = st.tuples(st.sampled_from([0, 1, 2]), st.integers(0, 10_000), st.integers(1, 255))
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) |
                          st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
header_value = st.one_of(json_value, st.sampled_from(
    ["none", "None", "NONE", "HS256", "RS256", "ES256", "PS256", "EdDSA", "RS512", "rp-1",
     "rs256", "secevent+jwt", "JWT", "../../etc/passwd", ""]))
headers = st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "jku", "x5u", "jwk",
                                           "b64", "zip", "enc", "cty"]),
                          header_value, max_size=5)


@st.composite
def foreign_tokens(draw, genuine: str):
    """Anything but the genuine token: garbage, random segments, random headers over the
    genuine payload and signature, cuts, extra segments, huge tokens."""
    head, body, sig = genuine.split(".")
    kind = draw(st.sampled_from(["text", "segments", "header", "cut", "extra", "huge",
                                 "payload"]))
    if kind == "text":
        return draw(st.text(max_size=300))
    if kind == "segments":
        parts = draw(st.lists(st.one_of(st.binary(max_size=80).map(_b64),
                                        json_value.map(lambda v: _b64(json.dumps(v).encode())),
                                        st.text(max_size=20)), min_size=1, max_size=5))
        return ".".join(parts)
    if kind == "header":
        return ".".join([_b64(json.dumps(draw(headers)).encode()), body, sig])
    if kind == "payload":  # random claims under the genuine header and signature
        claims = draw(st.dictionaries(st.text(max_size=10), json_value, max_size=6))
        return ".".join([head, _b64(json.dumps(claims).encode()), sig])
    if kind == "cut":
        return genuine[:draw(st.integers(0, len(genuine) - 1))]
    if kind == "extra":
        # (not whitespace or "=" padding: receivers may strip those and see the genuine token)
        return genuine + draw(st.sampled_from([".", ".x", "..", "%00", ".e30"]))
    size = draw(st.sampled_from([5_000, 20_000, 200_000]))
    return draw(st.sampled_from([head + "." + "a" * size + "." + sig, "a" * size,
                                 _b64(b"{" * 100 + b"}" * 100) + "." + body + "." + sig]))


def assert_clean(response) -> None:
    """Never a 500, never a stack trace."""
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    text = response.get_data(as_text=True)
    assert not any(marker in text for marker in TRACEBACK_MARKERS), text[:300]


# -- client assertions at /token -----------------------------------------------------------------

@pytest.fixture(scope="module")
def rp_keys():
    return Keys()


@pytest.fixture
def jwt_rp(app, rp_keys):
    return register_client(app, token_endpoint_auth_method="private_key_jwt",
                           jwks=rp_keys.jwks, grant_types=["client_credentials"])


def _token_request(client, rp, assertion: str):
    return client.post("/token", data={"client_id": rp.client_id, "client_assertion": assertion,
                                       "client_assertion_type": ASSERTION_TYPE, **TOKEN_FORM})


def _refused_client(response) -> None:
    """RFC 6749 5.2 / RFC 7523 3: invalid_client (400, or 401), no token."""
    assert_clean(response)
    assert response.status_code in (400, 401), response.json
    assert response.json["error"] in ("invalid_client", "invalid_request"), response.json
    assert "access_token" not in response.json


@PROPERTIES
@given(change=one_byte)
def test_an_assertion_changed_in_any_one_byte_is_refused(app, client, rp_keys, jwt_rp, change):
    genuine = _sign(_assertion_claims(jwt_rp.client_id), rp_keys.client)
    forged = mutate(genuine, *change)
    note(forged)
    response = _token_request(client, jwt_rp, forged)
    _refused_client(response)
    if change[0] > 0:  # header changes may break parsing first; the rest is a signature fail
        assert response.json["error"] == "invalid_client"


@PROPERTIES
@given(data=st.data())
def test_random_and_malformed_assertions_are_invalid_client(app, client, rp_keys, jwt_rp, data):
    genuine = _sign(_assertion_claims(jwt_rp.client_id), rp_keys.client)
    forged = data.draw(foreign_tokens(genuine))
    note(forged[:500])
    _refused_client(_token_request(client, jwt_rp, forged))


def test_the_genuine_assertion_is_accepted(app, client, rp_keys, jwt_rp):
    """Positive control: the refusals above are about the changes, not the set-up."""
    genuine = _sign(_assertion_claims(jwt_rp.client_id), rp_keys.client)
    response = _token_request(client, jwt_rp, genuine)
    assert response.status_code == 200 and response.json["access_token"]


# -- id_token_hint at /logout and /authorize -----------------------------------------------------

@pytest.fixture
def signed_in(app, client):
    """A citizen signed in at a first-party portal: (portal, its ID token)."""
    rp = register_client(app, first_party=True, post_logout_redirect_uris=[BYE])
    return rp, full_login(client, rp)["id_token"]


@PROPERTIES
@given(change=one_byte)
def test_an_id_token_hint_changed_in_any_one_byte_neither_signs_out_nor_redirects(
        client, signed_in, change):
    _rp, id_token = signed_in
    forged = mutate(id_token, *change)
    note(forged)
    response = client.get("/logout", query_string={"id_token_hint": forged,
                                                   "post_logout_redirect_uri": BYE,
                                                   "state": "s"})
    assert_clean(response)
    assert "Location" not in response.headers, response.headers["Location"]
    assert client.get("/account").status_code == 200, "a forged hint signed the citizen out"


@PROPERTIES
@given(data=st.data())
def test_random_id_token_hints_at_authorize_go_back_as_errors(client, signed_in, data):
    """OIDC Core 3.1.2.6: a hint we did not sign is an error sent to the registered redirect
    URI (or a page for an oversized one), never a code."""
    rp, id_token = signed_in
    forged = data.draw(st.one_of(foreign_tokens(id_token),
                                 one_byte.map(lambda change: mutate(id_token, *change)))
                       .filter(str.strip))  # an empty parameter is an absent one
    note(forged[:500])
    response = client.get("/authorize", query_string=authorize_params(
        rp, prompt="none", id_token_hint=forged))
    assert_clean(response)
    if response.status_code == 400:  # over MAX_PARAM_LENGTH: refused before parsing
        assert response.mimetype == "text/html"
        return
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?"), location
    callback = query_of(location)
    assert callback["error"] == "invalid_request" and "code" not in callback


def test_the_genuine_id_token_hint_signs_out_and_redirects(client, signed_in):
    _rp, id_token = signed_in
    response = client.get("/logout", query_string={"id_token_hint": id_token,
                                                   "post_logout_redirect_uri": BYE,
                                                   "state": "s"})
    assert response.status_code == 303 and response.headers["Location"] == f"{BYE}?state=s"


# -- Security Event Tokens from the register -----------------------------------------------------

@pytest.fixture(scope="module")
def register_key():
    return ECKey.generate_key("P-256", parameters={"kid": "register-1", "alg": "ES256"})


@pytest.fixture
def set_app(make_app, register_key):
    jwks = json.dumps({"keys": [register_key.as_dict(private=False)]})
    return make_app(REGISTER_URL=REGISTER_URL, REGISTER_JWKS=jwks)


def _set(key, **changes) -> str:
    """A SET like the register's: a status event for a number with no account here."""
    claims = {"iss": REGISTER_URL, "aud": ISSUER, "iat": int(time.time()),
              "jti": secrets.token_urlsafe(12),
              "events": {STATUS_EVENT: {"national_id": "079300000999", "status": "deceased",
                                        "changed_at": "2026-11-23T10:00:00Z"}}, **changes}
    return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "secevent+jwt"}, claims, key,
                      algorithms=["ES256"])


def _push(client, token: str):
    return client.post("/ekyc/register-events", data=token,
                       content_type="application/secevent+jwt")


def _refused_set(response) -> None:
    """RFC 8935 2.3: 400 with err/description (and error/error_description)."""
    assert_clean(response)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json["err"] in SET_ERRORS and response.json["error"] == response.json["err"]


@PROPERTIES
@given(change=one_byte)
def test_a_set_changed_in_any_one_byte_is_refused(set_app, register_key, change):
    forged = mutate(_set(register_key), *change)
    note(forged)
    _refused_set(_push(set_app.test_client(), forged))


@PROPERTIES
@given(data=st.data())
def test_random_and_malformed_sets_are_refused(set_app, register_key, data):
    forged = data.draw(foreign_tokens(_set(register_key)))
    note(forged[:500])
    response = _push(set_app.test_client(), forged)
    _refused_set(response)


@PROPERTIES
@given(claims=st.dictionaries(st.sampled_from(["iss", "aud", "iat", "exp", "jti", "events"]),
                              json_value, min_size=1, max_size=3))
def test_genuinely_signed_sets_with_random_claims_never_fail(set_app, register_key, claims):
    """Signed by the register's key but with random iss/aud/iat/exp/jti/events: 202 only when
    every claim is still right, else a clean 400."""
    response = _push(set_app.test_client(), _set(register_key, **claims))
    assert_clean(response)
    assert response.status_code in (202, 400)
    if response.status_code == 400:
        assert response.json["err"] in SET_ERRORS


def test_the_genuine_set_is_accepted_and_a_stranger_key_is_not(set_app, register_key):
    client = set_app.test_client()
    assert _push(client, _set(register_key)).status_code == 202
    stranger = ECKey.generate_key("P-256", parameters={"kid": "register-1", "alg": "ES256"})
    _refused_set(_push(client, _set(stranger)))


# -- nesting: JSON so deep that the parser recurses out of the stack -------------------------------

DEEP_HEADER = _b64(b"[" * 2000) + ".e30.c2ln"


def test_a_set_with_a_deeply_nested_header_is_refused(set_app):
    _refused_set(_push(set_app.test_client(), DEEP_HEADER))


@pytest.mark.parametrize("where", ["token", "logout"])
def test_deeply_nested_headers_elsewhere_are_refused(app, client, jwt_rp, where):
    if where == "token":
        _refused_client(_token_request(client, jwt_rp, DEEP_HEADER))
    else:
        response = client.get("/logout", query_string={"id_token_hint": DEEP_HEADER})
        assert_clean(response)
        assert "Location" not in response.headers

