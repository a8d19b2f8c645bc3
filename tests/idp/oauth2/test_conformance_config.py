"""OpenID Foundation conformance, Config OP plan (oidcc-config-certification-test-plan).

oidcc-discovery-endpoint-verification: the discovery document (OIDC Discovery 1.0 section 3,
4.3; RFC 8414) and the JWKS it points to (RFC 7517, RFC 7518 6), with the checks the suite
applies before every test, plus truthfulness: what is advertised works.
"""

from __future__ import annotations

import re

import pyotp
import pytest

from idp import crypto, keys
from idp.extensions import db
from idp.models import Account
from tests.conftest import ISSUER
from tests.helpers import (
    authorize_params,
    csrf_token,
    exchange,
    follow_to_client,
    get_code,
    login,
    query_of,
    register_client,
)
from tests.idp.oauth2.test_conformance_basic import (
    b64url_decode,
    check_callback,
    check_id_token,
    check_token_response,
    run_flow,
)

DISCOVERY = "/.well-known/openid-configuration"
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
             "registration_endpoint", "revocation_endpoint", "introspection_endpoint",
             "pushed_authorization_request_endpoint", "end_session_endpoint")
REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
            "response_types_supported", "subject_types_supported",
            "id_token_signing_alg_values_supported")
BOOLEANS = ("claims_parameter_supported", "request_parameter_supported",
            "request_uri_parameter_supported", "require_request_uri_registration",
            "require_pushed_authorization_requests",
            "authorization_response_iss_parameter_supported", "backchannel_logout_supported",
            "backchannel_logout_session_supported", "frontchannel_logout_supported",
            "frontchannel_logout_session_supported")
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")  # unpadded base64url (RFC 7515 2)
# BCP 47 language tag (RFC 5646 2.1), the common subset: language, script, region, variants.
BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|\d{3}))?"
                   r"(-([A-Za-z0-9]{5,8}|\d[A-Za-z0-9]{3}))*$")


@pytest.fixture
def meta(client) -> dict:
    response = client.get(DISCOVERY)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


# -- the document -------------------------------------------------------------------------------

def test_issuer_equals_the_discovery_url_minus_the_well_known_suffix(client, meta):
    """Discovery 4.3: issuer is exactly the URL the document was fetched under; RFC 8414 too."""
    assert meta["issuer"] == ISSUER
    assert (ISSUER + DISCOVERY).removesuffix(DISCOVERY) == meta["issuer"]
    assert not meta["issuer"].endswith("/")
    assert client.get("/.well-known/oauth-authorization-server").json["issuer"] == ISSUER


def test_required_members_and_endpoints_are_present_and_served(client, meta):
    """Discovery 3: required members present; every advertised endpoint is served by us."""
    for name in REQUIRED:
        assert meta.get(name), name
    for name in ENDPOINTS:
        uri = meta[name]
        assert isinstance(uri, str) and uri.startswith(ISSUER + "/"), name
        path = uri.removeprefix(ISSUER)
        status = {client.get(path).status_code, client.post(path).status_code}
        assert 404 not in status, f"{name} {uri} is not served"


def test_schema_types(meta):
    """Discovery 3 value types: URLs are strings, *_supported are arrays of strings, flags are
    booleans."""
    for name, value in meta.items():
        if name.endswith("_supported") and name not in BOOLEANS:
            assert isinstance(value, list) and value, name
            assert all(isinstance(v, str) and v for v in value), name
            assert len(set(value)) == len(value), f"{name} has duplicates"
        elif name in BOOLEANS:
            assert isinstance(value, bool), name
        else:
            assert isinstance(value, str) and value, name
            assert value.startswith(("https://", "http://")), name


def test_response_subject_types_algs_scopes_pkce(meta):
    """The suite's discovery checks: code, public/pairwise, RS256 (no none), openid, S256."""
    assert "code" in meta["response_types_supported"]
    assert set(meta["subject_types_supported"]) <= {"public", "pairwise"}
    assert {"public", "pairwise"} & set(meta["subject_types_supported"])
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    assert "openid" in meta["scopes_supported"]
    assert "S256" in meta["code_challenge_methods_supported"]
    assert "plain" not in meta["code_challenge_methods_supported"]
    assert meta["authorization_response_iss_parameter_supported"] is True


def test_locales_are_bcp47(meta):
    """oidcc-discovery-endpoint-verification: ui_locales / claims_locales are BCP 47 tags."""
    for name in ("ui_locales_supported", "claims_locales_supported"):
        for tag in meta.get(name, []):
            assert BCP47.match(tag), f"{name}: {tag!r} is not a BCP 47 tag"
    assert BCP47.match("vi-VN") and BCP47.match("zh-Hant-TW") and not BCP47.match("vi_VN")


def test_every_endpoint_is_https_under_an_https_issuer(make_app):
    """The suite requires https endpoints in production: they all hang under the issuer."""
    app = make_app(ISSUER="https://id.dinhdanh.gov.vn")
    meta = app.test_client().get(DISCOVERY).json
    assert meta["issuer"] == "https://id.dinhdanh.gov.vn"
    for name, value in meta.items():
        if name.endswith(("_endpoint", "_uri")) or name in ("service_documentation",
                                                            "op_policy_uri", "op_tos_uri"):
            assert value.startswith("https://id.dinhdanh.gov.vn/"), name


def test_documentation_links_resolve(client, meta):
    """Discovery 3: service_documentation / op_policy_uri / op_tos_uri, if given, are pages."""
    for name in ("service_documentation", "op_policy_uri", "op_tos_uri"):
        if name in meta:
            path = meta[name].removeprefix(ISSUER)
            assert client.get(path).status_code == 200, f"{name} {meta[name]} is not a page"


# -- truthfulness -------------------------------------------------------------------------------

def test_claims_supported_are_all_released_by_some_flow(app, client, meta):
    """claims_supported is truthful: each listed claim appears in an ID token or userinfo."""
    with app.app_context():
        account = db.session.scalar(db.select(Account).filter_by(kind="citizen"))
        account.locale = "vi-VN"
        db.session.commit()
    rp = register_client(app)
    every_scope = " ".join(s for s in meta["scopes_supported"])
    flow = run_flow(client, rp, scope=every_scope)
    released = set(flow["id_token"]) | set(flow["userinfo"]) | {"nonce"}
    missing = set(meta["claims_supported"]) - released
    assert not missing, f"advertised but never released: {sorted(missing)}"


def test_scopes_supported_are_all_accepted(app, client, meta):
    """scopes_supported is truthful: a request with every scope is granted every scope."""
    rp = register_client(app, scope=" ".join(meta["scopes_supported"]))
    tokens = run_flow(client, rp, scope=" ".join(meta["scopes_supported"]))["tokens"]
    assert set(tokens["scope"].split()) == set(meta["scopes_supported"])


def _second_factor_flow(app, rp, acr: str) -> str:
    """A fresh browser asks for `acr`; the citizen signs in with password and TOTP code."""
    secret = pyotp.random_base32()
    with app.app_context():
        account = db.session.scalar(db.select(Account).filter_by(kind="citizen"))
        account.totp_secret_encrypted, account.totp_last_step = crypto.encrypt(secret), 0
        db.session.commit()
    browser = app.test_client()
    sent = authorize_params(rp, acr_values=acr)
    start = browser.get("/authorize", query_string=sent)
    assert login(browser, interaction=query_of(start.headers["Location"])["interaction"]) \
        .headers["Location"] == "/login/otp"
    page = browser.get("/login/otp")
    response = browser.post("/login/otp", data={"csrf_token": csrf_token(page.text),
                                                "code": pyotp.TOTP(secret).now()})
    callback = query_of(follow_to_client(browser, response, rp).headers["Location"])
    tokens = check_token_response(exchange(browser, rp, check_callback(callback, sent)))
    return check_id_token(browser, rp, tokens["id_token"], nonce=sent["nonce"])["acr"]


def test_acr_values_supported_are_reachable(app, client, meta):
    """acr_values_supported is truthful: each value is what a citizen of that level gets,
    signing in with the password (nothing asked), or asking for it with a second factor."""
    rp = register_client(app)
    seen = set()
    for level in (1, 2):
        with app.app_context():
            account = db.session.scalar(db.select(Account).filter_by(kind="citizen"))
            account.level, account.totp_secret_encrypted = level, None
            db.session.commit()
        other = app.test_client()
        seen.add(run_flow(other, rp)["id_token"]["acr"])
        seen.add(_second_factor_flow(app, rp, f"urn:dinhdanh:loa:{level}:mfa"))
    assert seen == set(meta["acr_values_supported"])


def test_response_modes_supported_all_work(app, client, meta):
    """response_modes_supported is truthful: query redirects, form_post posts a form; fragment
    is not advertised (code flow only)."""
    rp = register_client(app)
    assert set(meta["response_modes_supported"]) == {"query", "form_post"}
    callback, sent = get_code(client, rp)
    check_callback(callback, sent)
    response = client.get("/authorize", query_string=authorize_params(
        rp, response_mode="form_post"))
    assert response.status_code == 200 and "Location" not in response.headers
    assert f'action="{rp.redirect_uri}"' in response.text


def test_grant_types_supported_work(app, client, meta):
    """grant_types_supported is truthful, including client_credentials."""
    assert {"authorization_code", "refresh_token"} <= set(meta["grant_types_supported"])
    if "client_credentials" in meta["grant_types_supported"]:
        registered = client.post("/register", json={"grant_types": ["client_credentials"],
                                                    "client_name": "Batch service"})
        assert registered.status_code == 201, registered.json
        response = client.post("/token", data={"grant_type": "client_credentials"},
                               auth=(registered.json["client_id"],
                                     registered.json["client_secret"]))
        assert response.status_code == 200 and response.json["access_token"]


def test_unsupported_pkce_method_is_refused(app, client):
    """code_challenge_methods_supported is exactly S256: `plain` is refused."""
    rp = register_client(app)
    response = client.get("/authorize", query_string=authorize_params(
        rp, code_challenge="a" * 43, code_challenge_method="plain"))
    assert response.status_code == 302 and "error=invalid_request" in response.headers["Location"]


# -- JWKS ---------------------------------------------------------------------------------------

@pytest.fixture
def jwks(client, meta) -> list[dict]:
    response = client.get(meta["jwks_uri"].removeprefix(ISSUER))
    assert response.status_code == 200
    assert response.mimetype in ("application/json", "application/jwk-set+json")
    body = response.json
    assert isinstance(body.get("keys"), list) and body["keys"]
    return body["keys"]


def check_jwks(keys_: list[dict]) -> None:
    kids = [key.get("kid") for key in keys_]
    assert all(isinstance(k, str) and k for k in kids), "every key needs a non-empty kid"
    assert len(set(kids)) == len(kids), "kids are not unique"
    for key in keys_:
        assert key["kty"] in ("RSA", "EC"), "no symmetric keys in a public JWKS"
        leaked = [m for m in PRIVATE_MEMBERS if m in key]
        assert not leaked, f"{key['kid']} publishes private members {leaked}"
        assert key.get("use", "sig") == "sig"
        if key["kty"] == "RSA":
            assert B64URL.match(key["n"]) and B64URL.match(key["e"])
            assert len(b64url_decode(key["n"])) >= 256  # 2048 bits at least
            assert key.get("alg", "RS256") == "RS256"
        else:
            assert key["crv"] == "P-256" and key.get("alg", "ES256") == "ES256"
            for member in ("x", "y"):
                assert B64URL.match(key[member]), f"{member} is not unpadded base64url"
                assert len(b64url_decode(key[member])) == 32


def test_jwks_keys_are_public_unique_and_well_formed(jwks):
    """The suite's JWKS checks: unique non-empty kid (F), no private or symmetric material (F),
    RSA n/e and EC x/y unpadded base64url."""
    check_jwks(jwks)
    algs = {key.get("alg") for key in jwks}
    assert "RS256" in algs


def test_jwks_stays_valid_after_rotation(app, client, meta):
    """After a rotation the new and the retired keys are both published, kids still unique."""
    before = {k["kid"] for k in client.get("/jwks").json["keys"]}
    with app.app_context():
        new = keys.rotate()
    after = client.get("/jwks").json["keys"]
    check_jwks(after)
    kids = {k["kid"] for k in after}
    assert before <= kids and set(new) <= kids


def test_id_token_kid_is_in_the_jwks(app, client):
    """The ID token's kid names a published key, also after a rotation (checked per flow)."""
    rp = register_client(app)
    with app.app_context():
        keys.rotate()
    callback, sent = get_code(client, rp)
    tokens = check_token_response(exchange(client, rp, check_callback(callback, sent)))
    check_id_token(client, rp, tokens["id_token"], access_token=tokens["access_token"],
                   nonce=sent["nonce"])
