"""OAuth 2.0 Security Best Current Practice (RFC 9700) as an attacker would try it.

Each test names the RFC 9700 section it re-creates: code injection and replay (4.5, 2.1.1),
PKCE downgrade (4.8), redirect URI manipulation (4.1, 2.1), mix-up (4.4, RFC 9207), open
redirects (4.11), CSRF on login, consent and logout (4.7, and OIDC RP-Initiated Logout 2),
307 redirects (4.12), clickjacking (4.16), credential leakage via URLs (2.4, 4.2), refresh
token replay (4.14) and password guessing (RFC 6749 10.10; NIST SP 800-63B 5.2.2).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import ISSUER
from tests.helpers import (
    CITIZEN_PASSWORD,
    CITIZEN_PID,
    authorize_params,
    csrf_token,
    exchange,
    full_login,
    get_code,
    login,
    pkce_pair,
    query_of,
    register_client,
)

EVIL = "https://evil.example.com/cb"


def _id_token_claims(client, token: str) -> dict:
    keyset = KeySet.import_key_set(client.get("/jwks").json)
    return jwt.decode(token, keyset, algorithms=["RS256", "ES256"]).claims


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _is_error_page(response) -> bool:
    """The IdP showed a page to the person: no redirect anywhere (RFC 9700 4.11.2)."""
    return (response.status_code == 400 and "Location" not in response.headers
            and response.mimetype == "text/html")


# -- 4.5 authorization code injection, 2.1.1 code replay -----------------------------------

def test_code_injected_into_another_client_is_refused(app, client):
    """RFC 9700 4.5: a code stolen from portal A and sent by portal B gives B nothing."""
    rp_a = register_client(app)
    rp_b = register_client(app, redirect_uris=[rp_a.redirect_uri])  # even the same callback
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp_a, code_challenge=challenge, code_challenge_method="S256")
    stolen = exchange(client, rp_b, callback["code"], verifier)
    assert stolen.status_code == 400
    assert stolen.json["error"] == "invalid_grant"
    assert "access_token" not in stolen.json


def test_code_injected_into_another_session_fails_pkce(app, client):
    """RFC 9700 4.5.3.1: the attacker's session holds its own code_verifier, not the victim's."""
    rp = register_client(app)
    _victim_verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    attacker_verifier, _ = pkce_pair()
    response = exchange(client, rp, callback["code"], attacker_verifier)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


def test_code_bound_to_its_redirect_uri(app, client):
    """RFC 6749 4.1.3 / RFC 9700 4.1: the token request must repeat the redirect URI exactly."""
    rp = register_client(app, redirect_uris=["https://portal-a.example.vn/callback",
                                             "https://portal-a.example.vn/other"])
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    response = client.post("/token", auth=rp.auth, data={
        "grant_type": "authorization_code", "code": callback["code"], "code_verifier": verifier,
        "redirect_uri": "https://portal-a.example.vn/other"})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


def test_code_replay_is_refused_and_revokes_what_it_issued(app, client):
    """RFC 9700 2.1.1 / RFC 6749 4.1.2 (conformance oidcc-codereuse-30seconds): the second
    redemption fails and the tokens of the first stop working."""
    rp = register_client(app)
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256",
                           scope="openid profile offline_access")
    first = exchange(client, rp, callback["code"], verifier)
    assert first.status_code == 200
    tokens = first.json
    assert client.get("/userinfo", headers=_bearer(tokens["access_token"])).status_code == 200

    replay = exchange(client, rp, callback["code"], verifier)
    assert replay.status_code == 400
    assert replay.json["error"] == "invalid_grant"
    assert replay.headers["Cache-Control"] == "no-store"

    assert client.get("/userinfo", headers=_bearer(tokens["access_token"])).status_code == 401
    refreshed = client.post("/token", auth=rp.auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400
    assert refreshed.json["error"] == "invalid_grant"


def test_expired_code_is_refused(make_app):
    """RFC 6749 4.1.2: codes are short-lived; one past its lifetime gives no tokens."""
    app = make_app(AUTH_CODE_TTL=1)
    client = app.test_client()
    rp = register_client(app)
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    with app.app_context():  # age the stored code instead of waiting for it to expire
        from idp import store
        from idp.crypto import sha256_b64

        key = f"code:{sha256_b64(callback['code'])}"
        record = store.get_json(key)
        record["expires_at"] -= 120
        store.put_json(key, record, 60)
    response = exchange(client, rp, callback["code"], verifier)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


# -- 4.8 PKCE downgrade --------------------------------------------------------------------

def test_verifier_without_challenge_is_refused(app, client):
    """RFC 9700 4.8.2: a code issued without code_challenge must not be redeemed with a
    code_verifier (the attacker stripped the challenge from the victim's request)."""
    rp = register_client(app)
    callback, _ = get_code(client, rp)
    verifier, _ = pkce_pair()
    response = exchange(client, rp, callback["code"], verifier)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


def test_challenge_without_verifier_is_refused(app, client):
    """RFC 7636 4.6: a code bound to a challenge needs the verifier."""
    rp = register_client(app)
    _verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(client, rp, callback["code"])
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


@pytest.mark.parametrize("method", ["plain", None, "S512", "s256"])
def test_only_s256_challenges_are_accepted(app, client, method):
    """RFC 9700 2.1.1: S256 only; `plain` (also the RFC 7636 default when the method is
    missing) is refused with an error sent back to the client."""
    rp = register_client(app)
    _verifier, challenge = pkce_pair()
    params = authorize_params(rp, code_challenge=challenge, code_challenge_method=method)
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?")
    callback = query_of(location)
    assert callback["error"] == "invalid_request"
    assert callback["state"] == params["state"] and "code" not in callback


def test_public_client_must_use_pkce(app, client):
    """RFC 9700 2.1.1: public clients MUST use PKCE."""
    rp = register_client(app, token_endpoint_auth_method="none")
    params = authorize_params(rp)
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    callback = query_of(response.headers["Location"])
    assert callback["error"] == "invalid_request" and "code" not in callback


def test_discovery_advertises_s256_only(client):
    """RFC 9700 2.1.1 / RFC 8414: clients learn that PKCE S256 is supported."""
    assert client.get("/.well-known/openid-configuration").json[
        "code_challenge_methods_supported"] == ["S256"]


# -- 4.1 redirect URI manipulation ---------------------------------------------------------

@pytest.mark.parametrize("tampered", [
    EVIL,
    "https://portal-a.example.vn/callback/../../evil",
    "https://portal-a.example.vn/callback/extra",
    "https://portal-a.example.vn/callbackx",
    "https://portal-a.example.vn/callback?next=https://evil.example.com",
    "https://portal-a.example.vn/callback#frag",
    "https://portal-a.example.vn.evil.example.com/callback",
    "https://evil.example.com@portal-a.example.vn/callback",
    "https://portal-a.example.vn@evil.example.com/callback",
    "https://PORTAL-A.example.vn/callback",
    "http://portal-a.example.vn/callback",
    "https://portal-a.example.vn:8443/callback",
    "https://portal-a.example.vn/Callback",
    "https://portal-a.example.vn/callback/",
    "https://portal-a.example.vn/%63allback",
    "//evil.example.com/cb",
    "javascript:alert(1)",
])
def test_redirect_uri_must_match_exactly(app, client, tampered):
    """RFC 9700 4.1.3 / 2.1 (conformance oidcc-ensure-registered-redirect-uri): exact string
    matching; anything else is an error page, never a redirect."""
    rp = register_client(app)
    response = client.get("/authorize", query_string=authorize_params(rp, redirect_uri=tampered))
    assert _is_error_page(response)
    assert "evil" not in response.headers.get("Location", "")


def test_redirect_uri_manipulation_with_a_session_still_shows_a_page(app, client):
    """RFC 9700 4.1: a signed-in victim is not silently sent to the attacker with a code."""
    rp = register_client(app, first_party=True)
    full_login(client, rp)
    response = client.get("/authorize", query_string=authorize_params(rp, redirect_uri=EVIL,
                                                                      prompt="none"))
    assert _is_error_page(response)


def test_registered_query_must_not_change(app, client):
    """OIDC Registration 2 (conformance oidcc-redirect-uri-query-mismatch / -query-added)."""
    rp = register_client(app, redirect_uris=["https://portal-a.example.vn/cb?tenant=1"])
    for tampered in ("https://portal-a.example.vn/cb?tenant=2",
                     "https://portal-a.example.vn/cb?tenant=1&x=1",
                     "https://portal-a.example.vn/cb"):
        response = client.get("/authorize",
                              query_string=authorize_params(rp, redirect_uri=tampered))
        assert _is_error_page(response), tampered


def test_registration_refuses_fragment_redirect_uris(client):
    """RFC 6749 3.1.2 (conformance oidcc-redirect-uri-regfrag): no fragment in redirect URIs."""
    response = client.post("/register", json={"redirect_uris": ["https://rp.example.vn/cb#x"]})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_redirect_uri"


# -- 4.4 mix-up: iss in every authorization response (RFC 9207) ----------------------------

def test_success_response_carries_iss(app, client):
    """RFC 9207 2 / RFC 9700 4.4.2: the client can tell which issuer answered."""
    rp = register_client(app)
    callback, params = get_code(client, rp)
    assert callback["iss"] == ISSUER
    assert callback["state"] == params["state"]


def test_error_response_carries_iss(app, client):
    """RFC 9207 2: error responses too."""
    rp = register_client(app)
    params = authorize_params(rp, scope="profile")  # no openid: invalid_scope
    response = client.get("/authorize", query_string=params)
    callback = query_of(response.headers["Location"])
    assert callback["error"] == "invalid_scope"
    assert callback["iss"] == ISSUER and callback["state"] == params["state"]


def test_form_post_response_carries_iss(app, client):
    """RFC 9207 with OAuth 2.0 Form Post Response Mode."""
    rp = register_client(app, first_party=True)
    full_login(client, rp)
    params = authorize_params(rp, response_mode="form_post")
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 200
    assert f'name="iss" value="{ISSUER}"' in response.text
    assert f'action="{rp.redirect_uri}"' in response.text


def test_discovery_and_id_token_name_the_issuer(app, client):
    """RFC 9207 3 / OIDC Core 3.1.3.7: iss advertised and equal in the ID token."""
    meta = client.get("/.well-known/openid-configuration").json
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["issuer"] == ISSUER
    rp = register_client(app)
    claims = _id_token_claims(client, full_login(client, rp)["id_token"])
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id


# -- 4.11 open redirection -----------------------------------------------------------------

def test_unknown_client_is_a_page_not_a_redirect(client):
    """RFC 9700 4.11.2 / RFC 6749 4.1.2.1: unknown client, no redirect to its URI."""
    response = client.get("/authorize", query_string={
        "client_id": "no-such-client", "redirect_uri": EVIL, "response_type": "code",
        "scope": "openid", "state": "s"})
    assert _is_error_page(response)


def test_missing_redirect_uri_is_a_page(app, client):
    """RFC 6749 3.1.2.4: without a redirect URI to trust, tell the person, do not redirect."""
    rp = register_client(app)
    response = client.get("/authorize", query_string=authorize_params(rp, redirect_uri=None))
    assert _is_error_page(response)


@pytest.mark.parametrize("target", ["https://evil.example.com/", "//evil.example.com/",
                                    "/\\evil.example.com", "\\\\evil.example.com",
                                    "https:evil.example.com", "/%2F%2Fevil.example.com",
                                    " //evil.example.com"])
def test_language_switch_is_not_an_open_redirector(client, target):
    """RFC 9700 4.11.1: the `next` of the language switch stays on our site."""
    response = client.get("/lang/en", query_string={"next": target})
    assert response.status_code == 302
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert parts.netloc in ("", urlsplit(ISSUER).netloc, "localhost")
    assert not parts.path.startswith("//") and "\\" not in location


def test_logout_redirect_only_to_registered_uri_with_hint(app, client):
    """OIDC RP-Initiated Logout 2 / RFC 9700 4.11: no redirect to an unregistered address,
    nor to a registered one without an id_token_hint proving who asks."""
    rp = register_client(app, first_party=True,
                         post_logout_redirect_uris=["https://portal-a.example.vn/bye"])
    tokens = full_login(client, rp)
    unregistered = client.get("/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": EVIL, "state": "s"})
    assert "evil" not in unregistered.headers.get("Location", "")
    assert unregistered.status_code == 200  # a page, the session ended by its own id token
    other = app.test_client()
    full_login(other, rp)
    no_hint = other.get("/logout", query_string={
        "client_id": rp.client_id, "post_logout_redirect_uri": "https://portal-a.example.vn/bye"})
    assert no_hint.status_code == 200 and "Location" not in no_hint.headers


def test_bad_interaction_handle_is_a_page(client):
    """RFC 9700 4.11: pages that continue a flow never redirect on input they do not know."""
    for path in ("/login", "/consent", "/select-account", "/authorize/resume"):
        response = client.get(path, query_string={"interaction": "https://evil.example.com"})
        assert _is_error_page(response), path


# -- 4.7 CSRF: login, consent, logout, account actions --------------------------------------

def test_login_post_without_csrf_token_is_refused(client):
    """RFC 9700 4.7 / OWASP login CSRF: an attacker cannot sign the victim in as himself."""
    response = client.post("/login", data={"national_id": CITIZEN_PID,
                                           "password": CITIZEN_PASSWORD})
    assert response.status_code == 400
    assert "idp_session" not in response.headers.get("Set-Cookie", "")
    assert client.get("/account").status_code == 302  # still not signed in


def test_login_post_with_another_browsers_csrf_token_is_refused(app, client):
    """A CSRF token is bound to the browser that received the form."""
    attacker = app.test_client()
    token = csrf_token(attacker.get("/login").text)
    client.get("/login")
    response = client.post("/login", data={"csrf_token": token, "national_id": CITIZEN_PID,
                                           "password": CITIZEN_PASSWORD})
    assert response.status_code == 400
    assert "idp_session" not in response.headers.get("Set-Cookie", "")


def _to_consent(app, client):
    rp = register_client(app)
    params = authorize_params(rp)
    response = client.get("/authorize", query_string=params)
    interaction = query_of(response.headers["Location"])["interaction"]
    login(client, interaction=interaction)
    page = client.get("/consent", query_string={"interaction": interaction})
    assert page.status_code == 200
    return rp, params, interaction, page


def test_consent_post_without_csrf_token_is_refused(app, client):
    """RFC 9700 4.7: a forged 'allow' must not grant a portal access."""
    rp, _, interaction, _ = _to_consent(app, client)
    forged = client.post("/consent", data={"interaction": interaction, "decision": "allow"})
    assert forged.status_code == 400 and "Location" not in forged.headers
    with app.app_context():
        from idp.extensions import db
        from idp.models import Consent

        assert db.session.scalar(db.select(Consent).filter_by(client_id=rp.client_id)) is None


def test_interaction_of_another_browser_is_refused(app, client):
    """The interaction handle is bound to the browser that started it: an attacker cannot make
    the victim approve the attacker's authorization request (RFC 9700 4.7, consent CSRF)."""
    _, _, interaction, _ = _to_consent(app, client)
    victim = app.test_client()
    login(victim)
    for path in ("/consent", "/login", "/authorize/resume"):
        response = victim.get(path, query_string={"interaction": interaction})
        assert _is_error_page(response), path


def test_logout_confirm_without_csrf_token_is_refused(app, client):
    """OIDC RP-Initiated Logout 2: a forged POST does not sign the citizen out."""
    rp = register_client(app, first_party=True)
    full_login(client, rp)
    response = client.post("/logout/confirm", data={})
    assert response.status_code == 400
    assert client.get("/account").status_code == 200


def test_logout_without_hint_asks_for_confirmation(app, client):
    """OIDC RP-Initiated Logout 2: a bare GET /logout (an <img> on any page) only asks."""
    rp = register_client(app, first_party=True)
    full_login(client, rp)
    page = client.get("/logout")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    assert client.get("/account").status_code == 200
    confirmed = client.post("/logout/confirm", data={"csrf_token": csrf_token(page.text),
                                                     "token": _logout_token(page.text)})
    assert confirmed.status_code in (200, 303)
    assert client.get("/account").status_code == 302


def _logout_token(html: str) -> str:
    import re

    return re.search(r'name="token" value="([^"]+)"', html).group(1)


def test_logout_with_another_sessions_id_token_asks_for_confirmation(app, client):
    """Conformance oidcc-rp-initiated-logout (modified/foreign id_token_hint): the hint must
    belong to this browser's session."""
    rp = register_client(app, first_party=True)
    full_login(client, rp)
    attacker = app.test_client()
    foreign = full_login(attacker, rp)["id_token"]
    page = client.get("/logout", query_string={"id_token_hint": foreign})
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize("path,data", [
    ("/account/consents/revoke", {"client_id": "x"}),
    ("/account/sessions/end", {"handle": "x"}),
    ("/account/totp/remove", {}),
    ("/account/totp", {"code": "123456"}),
])
def test_account_actions_need_csrf_token(app, client, path, data):
    """RFC 9700 4.7: every state-changing POST of a signed-in citizen carries a CSRF token."""
    login(client)
    response = client.post(path, data=data)
    assert response.status_code == 400
    assert client.get("/account").status_code == 200


def test_state_comes_back_unchanged(app, client):
    """RFC 9700 4.7.1 (conformance: 128-character state ending in -._~): the client's CSRF
    protection works only if `state` is returned byte for byte."""
    rp = register_client(app)
    state = secrets.token_urlsafe(93)[:124] + "-._~"
    callback, _ = get_code(client, rp, state=state)
    assert callback["state"] == state


# -- 4.12 307 redirects, 4.2 / 2.4 credential leakage, 4.16 clickjacking --------------------

def test_redirects_after_posted_credentials_are_never_307(app, client):
    """RFC 9700 4.12: a 307 would re-post the password to the client."""
    rp = register_client(app)
    response = client.get("/authorize", query_string=authorize_params(rp))
    interaction = query_of(response.headers["Location"])["interaction"]
    posted = login(client, interaction=interaction)
    assert posted.status_code in (302, 303)
    to_consent = client.get(posted.headers["Location"])
    consent_page = client.get(to_consent.headers["Location"])
    allowed = client.post("/consent", data={"csrf_token": csrf_token(consent_page.text),
                                            "interaction": interaction, "decision": "allow"})
    assert allowed.status_code in (302, 303)
    posted_authz = client.post("/authorize", data=authorize_params(rp))
    assert posted_authz.status_code in (302, 303)


def test_access_token_in_query_is_refused(app, client):
    """RFC 9700 2.4 / RFC 6750 2.3: tokens in URLs leak; userinfo refuses them."""
    rp = register_client(app)
    token = full_login(client, rp)["access_token"]
    response = client.get("/userinfo", query_string={"access_token": token})
    assert response.status_code in (400, 401)
    assert response.json["error"] in ("invalid_request", "invalid_token")


def test_auth_pages_send_no_referrer(app, client):
    """RFC 9700 4.2.4: the authorization page's URL (with its parameters) must not leak
    through Referer headers of links or resources on it."""
    rp = register_client(app)
    response = client.get("/authorize", query_string=authorize_params(rp))
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert client.get(response.headers["Location"]).headers["Referrer-Policy"] == "no-referrer"


def test_auth_pages_cannot_be_framed(app, client):
    """RFC 9700 4.16: clickjacking defence with CSP frame-ancestors (and X-Frame-Options)."""
    rp = register_client(app)
    response = client.get("/authorize", query_string=authorize_params(rp))
    pages = [response, client.get(response.headers["Location"]), client.get("/")]
    _, _, _, consent = _to_consent(app, app.test_client())
    pages.append(consent)
    for page in pages:
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"


def test_token_responses_are_not_cached(app, client):
    """RFC 6749 5.1 / RFC 9700 4.2: token responses carry Cache-Control: no-store."""
    rp = register_client(app)
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(client, rp, callback["code"], verifier)
    assert response.headers["Cache-Control"] == "no-store"


# -- 4.14 refresh tokens, 2.4 and 2.1.2 deprecated grants ---------------------------------

def test_refresh_token_reuse_revokes_the_family(app, client):
    """RFC 9700 4.14.2: a rotated refresh token used again revokes every token of the grant."""
    rp = register_client(app)
    tokens = full_login(client, rp, scope="openid offline_access")
    first = client.post("/token", auth=rp.auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200
    new = first.json
    replay = client.post("/token", auth=rp.auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 400 and replay.json["error"] == "invalid_grant"
    after = client.post("/token", auth=rp.auth, data={
        "grant_type": "refresh_token", "refresh_token": new["refresh_token"]})
    assert after.status_code == 400 and after.json["error"] == "invalid_grant"
    assert client.get("/userinfo", headers=_bearer(new["access_token"])).status_code == 401


def test_refresh_token_bound_to_its_client(app, client):
    """RFC 6749 6 / RFC 9700 4.14.2 (conformance oidcc-refresh-token): another client's
    refresh token is refused."""
    rp_a = register_client(app)
    rp_b = register_client(app, redirect_uris=["https://portal-b.example.vn/cb"])
    tokens = full_login(client, rp_a, scope="openid offline_access")
    response = client.post("/token", auth=rp_b.auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert response.status_code == 400 and response.json["error"] == "invalid_grant"


def test_password_grant_and_implicit_flow_are_not_offered(app, client):
    """RFC 9700 2.4 (no resource owner password grant) and 2.1.2 (no implicit grant)."""
    rp = register_client(app)
    response = client.post("/token", auth=rp.auth, data={
        "grant_type": "password", "username": CITIZEN_PID, "password": CITIZEN_PASSWORD})
    assert response.status_code == 400
    assert response.json["error"] in ("unsupported_grant_type", "unauthorized_client")
    params = authorize_params(rp, response_type="token")
    implicit = client.get("/authorize", query_string=params)
    callback = query_of(implicit.headers["Location"])
    assert callback["error"] == "unsupported_response_type" and "access_token" not in callback
    meta = client.get("/.well-known/openid-configuration").json
    assert "password" not in meta["grant_types_supported"]
    assert "implicit" not in meta["grant_types_supported"]
    assert meta["response_types_supported"] == ["code"]


# -- password guessing ----------------------------------------------------------------------

def test_password_guessing_is_throttled(make_app):
    """RFC 6749 10.10 / NIST SP 800-63B 5.2.2: after LOGIN_MAX_FAILURES wrong passwords even
    the right one is refused for a while, so guessing cannot go on."""
    app = make_app(LOGIN_MAX_FAILURES=3)
    client = app.test_client()
    for _ in range(3):
        assert login(client, password="wrong-Password-1").status_code == 401
    response = login(client)
    assert response.status_code == 429
    assert "idp_session" not in response.headers.get("Set-Cookie", "")
    assert client.get("/account").status_code == 302
