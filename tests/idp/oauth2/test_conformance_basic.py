"""OpenID Foundation conformance, Basic OP plan (oidcc-basic-certification-test-plan).

Each test re-creates one module of the plan (its name in the docstring), with the checks the
suite applies to every flow (../shared/OIDC-CONFORMANCE.md, "Every test's common flow"): the
callback, the token response, the ID token and userinfo. The plan runs once with
client_secret_basic and once with client_secret_post; the tests taking the `rp` fixture run
under both.

The helpers above the tests are the suite's common checks; the Form Post and Config plans
import them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from idp import store
from idp.crypto import sha256_b64
from idp.extensions import db
from idp.models import Account
from tests.conftest import ISSUER
from tests.helpers import (
    CITIZEN_PID,
    RP,
    authorize_params,
    exchange,
    follow_to_client,
    get_code,
    login,
    pkce_pair,
    query_of,
    register_client,
)

ERROR_PARAMS = {"error", "error_description", "error_uri", "state", "iss"}
LONG_STATE_TAIL = "-._~"


# -- the suite's common checks ----------------------------------------------------------------

def long_state() -> str:
    """The 128-character state some modules send, ending in the unreserved `-._~`."""
    return secrets.token_urlsafe(96)[:124] + LONG_STATE_TAIL


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def half_hash(value: str) -> str:
    """OIDC Core 3.1.3.6 at_hash for RS256/ES256: left half of SHA-256, base64url."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def token_request(client, rp: RP, data: dict):
    """A token request authenticated with the client's registered method."""
    if rp.meta.get("token_endpoint_auth_method") == "client_secret_post":
        return client.post("/token", data={**data, "client_id": rp.client_id,
                                           "client_secret": rp.client_secret})
    return client.post("/token", data=data, auth=rp.auth)


def check_callback(callback: dict, sent: dict) -> str:
    """Callback checks: state byte for byte, iss = issuer (RFC 9207), a strong code."""
    assert "error" not in callback, callback
    assert callback.get("state") == sent.get("state")
    if "state" not in sent:
        assert "state" not in callback
    assert callback["iss"] == ISSUER
    code = callback["code"]
    assert len(b64url_decode(code)) >= 16  # >= 128 bits (codes need > 96 bits of entropy)
    return code


def check_error_callback(callback: dict, error: str | tuple, state: str | None) -> None:
    """An error response: only the allowed parameters, a clean description, state and iss."""
    errors = (error,) if isinstance(error, str) else error
    assert callback.get("error") in errors, callback
    assert set(callback) <= ERROR_PARAMS, callback
    assert "code" not in callback
    assert not re.search(r"[\r\n\t]", callback.get("error_description", ""))
    assert callback.get("state") == state
    assert callback["iss"] == ISSUER


def check_token_response(response) -> dict:
    """Token response checks: 200 JSON, Bearer, positive expires_in, ID token, no-store."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert "no-store" in response.headers.get("Cache-Control", "")
    body = response.json
    assert body["access_token"] and isinstance(body["access_token"], str)
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body.get("expires_in"), int) and body["expires_in"] > 0
    assert body.get("id_token"), "the token response has no id_token"
    return body


def published_keys(client) -> KeySet:
    response = client.get("/jwks")
    assert response.status_code == 200
    return KeySet.import_key_set(response.json)


def check_id_token(client, rp: RP, id_token: str, *, nonce: str | None = None,
                   access_token: str | None = None, clock: float | None = None) -> dict:
    """ID token checks of the suite; returns the claims."""
    header = json.loads(b64url_decode(id_token.split(".")[0]))
    assert header["alg"] == rp.meta.get("id_token_signed_response_alg", "RS256")
    assert header.get("kid"), "the ID token names no key"
    keyset = published_keys(client)
    key = keyset.get_by_kid(header["kid"])  # raises if the kid is not published
    claims = jwt.decode(id_token, key, algorithms=[header["alg"]]).claims
    now = clock if clock is not None else time.time()
    assert claims["iss"] == ISSUER
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert rp.client_id in aud
    if len(aud) > 1:
        assert claims.get("azp") == rp.client_id
    assert isinstance(claims["exp"], int) and now < claims["exp"] < now + 24 * 3600
    assert isinstance(claims["iat"], int) and abs(claims["iat"] - now) <= 300
    if nonce is None:
        assert "nonce" not in claims
    else:
        assert claims.get("nonce") == nonce
    sub = claims["sub"]
    assert isinstance(sub, str) and 0 < len(sub) <= 255
    assert all(0x21 <= ord(c) <= 0x7E for c in sub), "sub is not printable ASCII"
    if "auth_time" in claims:
        assert isinstance(claims["auth_time"], int)
        assert now - 24 * 3600 < claims["auth_time"] <= now + 5
    assert isinstance(claims.get("acr"), str) and claims["acr"]
    if access_token and "at_hash" in claims:
        assert claims["at_hash"] == half_hash(access_token)
    check_standard_claims(claims)
    return claims


def check_standard_claims(claims: dict) -> None:
    """OIDC Core 5.1 types: *_verified booleans, birthdate YYYY-MM-DD, address an object."""
    for name in ("email_verified", "phone_number_verified"):
        if name in claims:
            assert isinstance(claims[name], bool), name
    if "birthdate" in claims:
        assert re.fullmatch(r"\d{4}(-\d{2}-\d{2})?", claims["birthdate"])
    if "address" in claims:
        assert isinstance(claims["address"], dict)
        assert all(isinstance(v, str) for v in claims["address"].values())
    if "updated_at" in claims:
        assert isinstance(claims["updated_at"], int)
    for name in ("name", "given_name", "family_name", "email", "phone_number", "gender",
                 "locale"):
        if name in claims:
            assert isinstance(claims[name], str) and claims[name], name


def userinfo(client, access_token: str, how: str = "get"):
    """Userinfo the three ways of the userinfo-get / -post-header / -post-body modules."""
    if how == "get":
        return client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    if how == "post-header":
        return client.post("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return client.post("/userinfo", data={"access_token": access_token})


def check_userinfo(client, access_token: str, sub: str, how: str = "get") -> dict:
    response = userinfo(client, access_token, how)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.json["sub"] == sub
    check_standard_claims(response.json)
    return response.json


def run_flow(client, rp: RP, *, login_first: bool = True, userinfo_how: str = "get",
             **params) -> dict:
    """The whole common flow of a module; returns what a later step may need."""
    callback, sent = get_code(client, rp, login_first=login_first, **params)
    code = check_callback(callback, sent)
    tokens = check_token_response(exchange(client, rp, code, params.get("code_verifier")))
    claims = check_id_token(client, rp, tokens["id_token"], nonce=sent.get("nonce"),
                            access_token=tokens["access_token"])
    info = check_userinfo(client, tokens["access_token"], claims["sub"], userinfo_how)
    return {"sent": sent, "callback": callback, "tokens": tokens, "id_token": claims,
            "userinfo": info}


def age_sso_session(app, client, seconds: int) -> int:
    """Pretend the browser's login happened `seconds` earlier; returns the new auth_time."""
    cookie = client.get_cookie("idp_session")
    assert cookie is not None, "no SSO session cookie"
    with app.app_context():
        key = f"sso:{sha256_b64(cookie.value)}"
        sess = store.get_json(key)
        sess["auth_time"] -= seconds
        store.put_json(key, sess, store.kv().ttl(key))
    return sess["auth_time"]


def unsigned_request_object(claims: dict) -> str:
    def part(value: dict) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."


@pytest.fixture
def clock(monkeypatch):
    """Move the clock everyone in this process reads (app, fakeredis) forward, never waiting."""
    real = time.time
    offset = {"seconds": 0.0}
    monkeypatch.setattr(time, "time", lambda: real() + offset["seconds"])
    return offset


# -- oidcc-server, idtoken-signature, idtoken-unsigned -----------------------------------------

def test_server_happy_path_with_long_state(client, rp):
    """oidcc-server: the common flow with a 128-character state ending in `-._~`."""
    state = long_state()
    flow = run_flow(client, rp, state=state)
    assert flow["callback"]["state"] == state and state.endswith(LONG_STATE_TAIL)
    assert "auth_time" in flow["id_token"]


def test_idtoken_signature_verifies_only_with_the_named_key(app, client, rp):
    """oidcc-idtoken-signature: RS256 by the published key named by `kid`; a changed byte fails."""
    flow = run_flow(client, rp)
    token = flow["tokens"]["id_token"]
    head, _, sig = token.split(".")
    forged_body = base64.urlsafe_b64encode(json.dumps(
        {**flow["id_token"], "sub": "someone-else"}).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignatureError):
        jwt.decode(f"{head}.{forged_body}.{sig}", published_keys(client), algorithms=["RS256"])


def test_idtoken_unsigned_is_neither_advertised_nor_registrable(app, client):
    """oidcc-idtoken-unsigned runs only if `none` is advertised; it is not, nor registrable."""
    meta = client.get("/.well-known/openid-configuration").json
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    response = client.post("/register", json={"redirect_uris": ["https://rp.example.vn/cb"],
                                              "id_token_signed_response_alg": "none"})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_client_metadata"


# -- userinfo ----------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["get", "post-header", "post-body"])
def test_userinfo_get_post_header_post_body(client, rp, how):
    """oidcc-userinfo-get, -post-header, -post-body: 200 JSON with the ID token's sub."""
    run_flow(client, rp, userinfo_how=how)


# -- request validation --------------------------------------------------------------------------

def test_response_type_missing(app, client):
    """oidcc-response-type-missing: an error back to the client (or an error page), no code."""
    rp = register_client(app)
    state = long_state()
    response = client.get("/authorize", query_string=authorize_params(
        rp, response_type=None, state=state))
    assert response.status_code in (302, 303, 400)
    if response.status_code == 400:
        assert "Location" not in response.headers
        return
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?")
    check_error_callback(query_of(location), ("invalid_request", "unsupported_response_type"),
                         state)


def test_request_without_nonce_succeeds_for_code_flow(client, rp):
    """oidcc-ensure-request-without-nonce-succeeds-for-code-flow: no nonce in, none out."""
    flow = run_flow(client, rp, nonce=None)
    assert "nonce" not in flow["id_token"]


def test_request_with_unknown_parameter_succeeds(client, rp):
    """oidcc-ensure-request-with-unknown-parameter-succeeds: unknown parameters are ignored."""
    run_flow(client, rp, **{"extra_parameter": "ignore me", "x-vendor": "1"})


def test_registered_redirect_uri_is_enforced_with_an_error_page(app, client):
    """oidcc-ensure-registered-redirect-uri: an unregistered URI gets a page, never a redirect."""
    rp = register_client(app)
    for uri in ("https://attacker.example/callback", rp.redirect_uri + "?x=1",
                rp.redirect_uri + "/", "https://PORTAL-A.example.vn/callback"):
        response = client.get("/authorize", query_string=authorize_params(rp, redirect_uri=uri))
        assert response.status_code == 400, uri
        assert "Location" not in response.headers
        assert response.mimetype == "text/html"


def test_authorization_request_by_post_succeeds(client, rp):
    """oidcc-ensure-post-request-succeeds: the request form-encoded in a POST body."""
    params = authorize_params(rp)
    response = client.post("/authorize", data=params)
    assert response.status_code in (302, 303)
    location = response.headers["Location"]
    assert location.startswith("/login")
    response = login(client, interaction=query_of(location)["interaction"])
    response = follow_to_client(client, response, rp)
    callback = query_of(response.headers["Location"])
    code = check_callback(callback, params)
    tokens = check_token_response(exchange(client, rp, code))
    check_id_token(client, rp, tokens["id_token"], nonce=params["nonce"],
                   access_token=tokens["access_token"])


def test_valid_pkce_succeeds_and_a_wrong_verifier_fails(client, rp):
    """oidcc-ensure-request-with-valid-pkce-succeeds (RFC 7636 4.6), and its negative."""
    verifier, challenge = pkce_pair()
    run_flow(client, rp, code_challenge=challenge, code_challenge_method="S256",
             code_verifier=verifier)
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, login_first=False, code_challenge=challenge,
                           code_challenge_method="S256")
    wrong = exchange(client, rp, callback["code"], pkce_pair()[0])
    assert wrong.status_code == 400 and wrong.json["error"] == "invalid_grant"


# -- scopes and claims ---------------------------------------------------------------------------

SCOPE_EXPECTATIONS = {
    "profile": ("name", "family_name", "given_name", "birthdate", "gender", "updated_at"),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}


@pytest.mark.parametrize("scope", ["profile", "email", "address", "phone", "all"])
def test_scope_claims(client, rp, scope):
    """oidcc-scope-profile, -email, -address, -phone, -all: the scope's claims, well-typed,
    and nothing from scopes that were not asked (a W in the suite)."""
    scopes = list(SCOPE_EXPECTATIONS) if scope == "all" else [scope]
    flow = run_flow(client, rp, scope="openid " + " ".join(scopes))
    info = flow["userinfo"]
    for name in scopes:
        for claim in SCOPE_EXPECTATIONS[name]:
            assert claim in info, f"{claim} missing for scope {name}"
    others = {c for s, claims in SCOPE_EXPECTATIONS.items() if s not in scopes for c in claims}
    assert not others & set(info)
    assert info.get("email_verified", True) is True
    assert info.get("birthdate", "1999-03-15") == "1999-03-15"


def test_other_scope_order_succeeds(client, rp):
    """oidcc-ensure-other-scope-order-succeeds: `email openid` works like `openid email`."""
    flow = run_flow(client, rp, scope="email openid")
    assert flow["userinfo"]["email"] == "minhanh.demo@example.vn"
    run_flow(client, rp, scope="openid email", login_first=False)


def test_claims_essential_name_in_userinfo(client, rp):
    """oidcc-claims-essential: `name` asked as essential for userinfo with scope openid only."""
    claims = json.dumps({"userinfo": {"name": {"essential": True}}})
    flow = run_flow(client, rp, scope="openid", claims=claims)
    assert flow["userinfo"]["name"] == "Nguyễn Thị Minh Anh"
    assert "email" not in flow["userinfo"]


def test_claims_locales_is_accepted(client, rp):
    """oidcc-claims-locales: claims_locales=vi-VN en does not break the flow."""
    run_flow(client, rp, claims_locales="vi-VN en", scope="openid profile")


def test_acr_values_are_accepted_and_acr_is_among_them(client, rp):
    """oidcc-ensure-request-with-acr-values-succeeds: acr among the values asked (W if not)."""
    asked = "urn:dinhdanh:loa:1 urn:dinhdanh:loa:2"
    flow = run_flow(client, rp, acr_values=asked)
    assert flow["id_token"]["acr"] in asked.split()
    # Values the OP does not know (the suite sends "1 2") are voluntary: still a success.
    flow = run_flow(client, rp, acr_values="1 2", login_first=False)
    assert flow["id_token"]["acr"]


# -- display and pages ------------------------------------------------------------------------

@pytest.mark.parametrize("display", ["page", "popup"])
def test_display(client, rp, display):
    """oidcc-display-page, oidcc-display-popup: the login page works for both."""
    params = authorize_params(rp, display=display)
    location = client.get("/authorize", query_string=params).headers["Location"]
    page = client.get(location)
    assert page.status_code == 200 and 'name="password"' in page.text
    run_flow(client, rp, display=display, login_first=True)


def test_login_hint_prefills_the_login_form(app, client):
    """oidcc-login-hint: the hinted ID number is already in the form."""
    rp = register_client(app)
    location = client.get("/authorize", query_string=authorize_params(
        rp, login_hint=CITIZEN_PID)).headers["Location"]
    page = client.get(location)
    assert page.status_code == 200
    assert re.search(r'<input id="national_id"[^>]*value="001199000001"', page.text, re.DOTALL)


def test_ui_locales_switches_the_login_page_to_english(app, client):
    """oidcc-ui-locales: ui_locales=en gives an English page (Vietnamese is the default)."""
    rp = register_client(app)
    location = client.get("/authorize", query_string=authorize_params(rp)).headers["Location"]
    assert '<html lang="vi">' in client.get(location).text
    other = app.test_client()
    location = other.get("/authorize", query_string=authorize_params(
        rp, ui_locales="en")).headers["Location"]
    page = other.get(location)
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert "Sign in" in page.text and "Password" in page.text
    assert "Đăng nhập" not in page.text and "Mật khẩu" not in page.text
    # The hint was this portal's: the next request without one is in the default language.
    location = other.get("/authorize", query_string=authorize_params(rp)).headers["Location"]
    assert '<html lang="vi">' in other.get(location).text
    # A language tag with a region, after one we do not support, is matched too.
    location = other.get("/authorize", query_string=authorize_params(
        rp, ui_locales="fr-CA en-GB")).headers["Location"]
    assert '<html lang="en">' in other.get(location).text


# -- prompt, max_age, hints ----------------------------------------------------------------------

def test_prompt_login_forces_a_new_login(app, client, rp):
    """oidcc-prompt-login: a second login, a later auth_time, the same sub."""
    first = run_flow(client, rp)
    aged = age_sso_session(app, client, 10)  # the first login was earlier; no sleeping
    response = client.get("/authorize", query_string=authorize_params(rp, prompt="login"))
    assert response.headers["Location"].startswith("/login")
    second = run_flow(client, rp, prompt="login")
    assert second["id_token"]["auth_time"] > aged
    assert second["id_token"]["sub"] == first["id_token"]["sub"]


def test_prompt_none_not_logged_in(app, client):
    """oidcc-prompt-none-not-logged-in: login_required (or kin) with the 128-char state."""
    rp = register_client(app)
    state = long_state()
    response = client.get("/authorize", query_string=authorize_params(rp, prompt="none",
                                                                      state=state))
    assert response.status_code in (302, 303)
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?")
    check_error_callback(query_of(location), ("login_required", "interaction_required",
                                              "consent_required",
                                              "account_selection_required"), state)


def test_prompt_none_logged_in(client, rp):
    """oidcc-prompt-none-logged-in: no page, the same sub and the same auth_time."""
    first = run_flow(client, rp)
    second = run_flow(client, rp, prompt="none", login_first=False)
    assert second["id_token"]["sub"] == first["id_token"]["sub"]
    assert second["id_token"]["auth_time"] == first["id_token"]["auth_time"]


def test_prompt_none_without_consent_or_with_an_old_login(app, client, rp):
    """prompt=none (OIDC Core 3.1.2.6): logged in but the portal not yet approved gives
    consent_required; a login older than max_age gives login_required. Never a page."""
    other = register_client(app, redirect_uris=["https://portal-b.example.vn/cb"])
    run_flow(client, other)
    state = long_state()
    response = client.get("/authorize", query_string=authorize_params(rp, prompt="none",
                                                                      state=state))
    check_error_callback(query_of(response.headers["Location"]), "consent_required", state)
    run_flow(client, rp, login_first=False)
    age_sso_session(app, client, 5)
    response = client.get("/authorize", query_string=authorize_params(
        rp, prompt="none", max_age="1", state=state))
    check_error_callback(query_of(response.headers["Location"]), "login_required", state)


def test_max_age_1_requires_a_fresh_login(app, client, rp):
    """oidcc-max-age-1: after the login grows old, a new login and a later auth_time."""
    first = run_flow(client, rp)
    aged = age_sso_session(app, client, 5)  # stands for the suite's 2-second wait
    response = client.get("/authorize", query_string=authorize_params(rp, max_age="1"))
    assert response.headers["Location"].startswith("/login")
    second = run_flow(client, rp, max_age="1")
    assert "auth_time" in second["id_token"]
    assert second["id_token"]["auth_time"] > aged
    assert second["id_token"]["auth_time"] >= first["id_token"]["auth_time"]
    assert second["id_token"]["sub"] == first["id_token"]["sub"]


def test_max_age_10000_keeps_the_login(app, client, rp):
    """oidcc-max-age-10000: no login page, auth_time present and equal to the first."""
    first = run_flow(client, rp)
    aged = age_sso_session(app, client, 60)
    response = client.get("/authorize", query_string=authorize_params(rp, max_age="10000"))
    assert response.headers["Location"].startswith(rp.redirect_uri + "?")
    second = run_flow(client, rp, max_age="10000", login_first=False)
    assert second["id_token"]["auth_time"] == aged == first["id_token"]["auth_time"] - 60


def test_id_token_hint_with_prompt_none(client, rp):
    """oidcc-id-token-hint: prompt=none with the previous ID token gives the same sub."""
    first = run_flow(client, rp)
    second = run_flow(client, rp, prompt="none", login_first=False,
                      id_token_hint=first["tokens"]["id_token"])
    assert second["id_token"]["sub"] == first["id_token"]["sub"]


# -- authorization code reuse ----------------------------------------------------------------

def test_codereuse(client, rp):
    """oidcc-codereuse: the second redemption of a code is 400 invalid_grant."""
    callback, _ = get_code(client, rp)
    check_token_response(exchange(client, rp, callback["code"]))
    again = exchange(client, rp, callback["code"])
    assert again.status_code == 400
    assert again.json["error"] == "invalid_grant"
    assert "no-store" in again.headers.get("Cache-Control", "")


def test_codereuse_30seconds_revokes_the_first_access_token(client, rp, clock):
    """oidcc-codereuse-30seconds: 30 s later the replay fails and the first access token dies
    at userinfo (RFC 6749 4.1.2, RFC 9700 4.5)."""
    callback, _ = get_code(client, rp, scope="openid profile offline_access")
    tokens = check_token_response(exchange(client, rp, callback["code"]))
    assert userinfo(client, tokens["access_token"]).status_code == 200
    clock["seconds"] = 30  # the suite waits 30 s; we move the clock
    again = exchange(client, rp, callback["code"])
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"
    after = userinfo(client, tokens["access_token"])
    assert after.status_code == 401
    assert 'error="invalid_token"' in after.headers["WWW-Authenticate"]
    # The refresh token issued from that code goes with it.
    refresh = token_request(client, rp, {"grant_type": "refresh_token",
                                         "refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 400 and refresh.json["error"] == "invalid_grant"


# -- request objects --------------------------------------------------------------------------

def _request_object_client(app, **extra) -> RP:
    return register_client(app, request_object_signing_alg="none", **extra)


def test_unsigned_request_object_state_and_nonce_are_honoured(app, client):
    """oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported: the OP
    uses state and nonce found only inside the object (OIDC Core 6.1)."""
    rp = _request_object_client(app)
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    request_object = unsigned_request_object({
        "iss": rp.client_id, "aud": ISSUER, "client_id": rp.client_id,
        "response_type": "code", "redirect_uri": rp.redirect_uri, "scope": "openid profile",
        "state": state, "nonce": nonce})
    query = {"client_id": rp.client_id, "response_type": "code", "scope": "openid",
             "redirect_uri": rp.redirect_uri, "request": request_object}
    response = client.get("/authorize", query_string=query)
    response = login(client, interaction=query_of(response.headers["Location"])["interaction"])
    response = follow_to_client(client, response, rp)
    callback = query_of(response.headers["Location"])
    code = check_callback(callback, {"state": state})
    tokens = check_token_response(exchange(client, rp, code))
    check_id_token(client, rp, tokens["id_token"], nonce=nonce,
                   access_token=tokens["access_token"])


def test_unsigned_request_object_refused_for_a_client_that_did_not_register_none(app, client):
    """OIDC Core 6.3.2: an unsigned object from a client expecting signatures is an error sent
    back to the client, never silently ignored."""
    rp = register_client(app)
    state = secrets.token_urlsafe(8)
    request_object = unsigned_request_object({"client_id": rp.client_id, "state": state,
                                              "response_type": "code", "scope": "openid"})
    response = client.get("/authorize", query_string={
        "client_id": rp.client_id, "response_type": "code", "scope": "openid",
        "redirect_uri": rp.redirect_uri, "state": state, "request": request_object})
    assert response.status_code in (302, 303)
    check_error_callback(query_of(response.headers["Location"]),
                         ("invalid_request_object", "request_not_supported"), state)


@pytest.mark.parametrize("in_url", [True, False])
def test_request_object_with_redirect_uri(app, client, in_url):
    """oidcc-ensure-request-object-with-redirect-uri: redirect_uri inside the object (and in the
    URL or not) is the one used."""
    rp = _request_object_client(app)
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    request_object = unsigned_request_object({
        "client_id": rp.client_id, "response_type": "code", "scope": "openid",
        "redirect_uri": rp.redirect_uri, "state": state, "nonce": nonce})
    query = {"client_id": rp.client_id, "response_type": "code", "scope": "openid",
             "request": request_object}
    if in_url:
        query["redirect_uri"] = rp.redirect_uri
    response = client.get("/authorize", query_string=query)
    response = login(client, interaction=query_of(response.headers["Location"])["interaction"])
    response = follow_to_client(client, response, rp)
    assert response.headers["Location"].startswith(rp.redirect_uri + "?")
    code = check_callback(query_of(response.headers["Location"]), {"state": state})
    tokens = check_token_response(exchange(client, rp, code))
    check_id_token(client, rp, tokens["id_token"], nonce=nonce)


@pytest.fixture
def object_server():
    """A loopback HTTP server serving request objects at /<name> (request_uri by reference)."""
    served: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = served.get(self.path.lstrip("/"))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/oauth-authz-req+jwt")
            self.end_headers()
            self.wfile.write((body or "").encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, served
    server.shutdown()
    server.server_close()
    thread.join()


def test_unsigned_request_uri_state_and_nonce_are_honoured(app, client, object_server):
    """oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported (OIDC Core
    6.2): the object fetched from a registered request_uri is used."""
    base, served = object_server
    rp = _request_object_client(app, request_uris=[f"{base}/ro.jwt"])
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    served["ro.jwt"] = unsigned_request_object({
        "client_id": rp.client_id, "response_type": "code", "scope": "openid",
        "redirect_uri": rp.redirect_uri, "state": state, "nonce": nonce})
    response = client.get("/authorize", query_string={
        "client_id": rp.client_id, "response_type": "code", "scope": "openid",
        "redirect_uri": rp.redirect_uri, "request_uri": f"{base}/ro.jwt"})
    assert response.headers["Location"].startswith("/login")
    response = login(client, interaction=query_of(response.headers["Location"])["interaction"])
    response = follow_to_client(client, response, rp)
    code = check_callback(query_of(response.headers["Location"]), {"state": state})
    tokens = check_token_response(exchange(client, rp, code))
    check_id_token(client, rp, tokens["id_token"], nonce=nonce)


# -- refresh tokens ---------------------------------------------------------------------------

def test_refresh_token(app, client, rp, clock):
    """oidcc-refresh-token: a new access token (no-store), a new ID token with the same sub and
    a later iat; another client's refresh token is refused with invalid_grant."""
    flow = run_flow(client, rp, scope="openid profile offline_access", prompt="consent")
    refresh_token = flow["tokens"].get("refresh_token")
    assert refresh_token, "no refresh token for offline_access"
    clock["seconds"] = 5  # a later iat, without waiting
    refreshed = check_token_response(token_request(client, rp, {
        "grant_type": "refresh_token", "refresh_token": refresh_token}))
    assert refreshed["access_token"] != flow["tokens"]["access_token"]
    claims = check_id_token(client, rp, refreshed["id_token"], clock=time.time(),
                            access_token=refreshed["access_token"])
    assert claims["sub"] == flow["id_token"]["sub"]
    assert claims["iat"] > flow["id_token"]["iat"]
    assert claims.get("auth_time") == flow["id_token"].get("auth_time")
    check_userinfo(client, refreshed["access_token"], claims["sub"])

    other = register_client(app, token_endpoint_auth_method=rp.meta[
        "token_endpoint_auth_method"], redirect_uris=["https://portal-b.example.vn/cb"])
    refused = token_request(client, other, {"grant_type": "refresh_token",
                                            "refresh_token": refreshed["refresh_token"]})
    assert refused.status_code == 400 and refused.json["error"] == "invalid_grant"
    # The refused attempt did not burn the owner's token.
    check_token_response(token_request(client, rp, {
        "grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]}))


# -- error responses ------------------------------------------------------------------------

def test_error_responses_carry_only_protocol_parameters(app, client):
    """Common checks on error responses: error, error_description (no CR/LF/TAB), error_uri,
    state and iss only (RFC 6749 4.1.2.1, RFC 9207)."""
    rp = register_client(app)
    state = long_state()
    for extra in ({"prompt": "bogus"}, {"scope": "profile"}, {"max_age": "-1"},
                  {"claims": "{not json"}, {"code_challenge_method": "plain",
                                            "code_challenge": "x" * 43}):
        response = client.get("/authorize", query_string=authorize_params(rp, state=state,
                                                                          **extra))
        assert response.status_code in (302, 303), extra
        callback = query_of(response.headers["Location"])
        check_error_callback(callback, ("invalid_request", "invalid_scope"), state)


def test_level_two_account_gets_the_level_two_acr(app, client, rp):
    """acr_values_supported is truthful: a level-2 citizen signs in at urn:dinhdanh:loa:2."""
    with app.app_context():
        account = db.session.scalar(db.select(Account).filter_by(kind="citizen"))
        account.level = 2
        db.session.commit()
    flow = run_flow(client, rp, acr_values="urn:dinhdanh:loa:2")
    assert flow["id_token"]["acr"] == "urn:dinhdanh:loa:2"


def test_registered_query_in_redirect_uri_comes_back_unchanged(app, client):
    """Common callback check: a registered query on the redirect URI is kept as registered."""
    rp = register_client(app, redirect_uris=["https://portal-a.example.vn/cb?tenant=hn&x=%7E"])
    callback, sent = get_code(client, rp)
    assert callback["tenant"] == "hn" and callback["x"] == "~"
    check_callback(callback, sent)
