"""An independent relying party, Authlib's OAuth 2.0 client, against the running IdP over HTTP.

Re-creates, with a client library instead of our own helpers, the OpenID conformance flows:
oidcc-server (code flow, discovery, dynamic registration, ID token, userinfo), oidcc-refresh-token
(with rotation, RFC 9700 4.14.2), RP-initiated logout (oidcc-rp-initiated-logout: state back byte
for byte, then prompt=none gives login_required) and back-channel logout (OIDC Back-Channel
Logout 1.0 2.4: the logout token's claims).
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from .browser import Browser
from .rp_checks import check_logout_token

pytestmark = pytest.mark.e2e

REDIRECT_URI = "https://portal-authlib.example.vn/callback"
POST_LOGOUT_URI = "https://portal-authlib.example.vn/signed-out"
LEEWAY = 30


def _query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def _verify_id_token(id_token: str, keyset: KeySet, *, issuer: str, client_id: str,
                     nonce: str, access_token: str) -> CodeIDToken:
    """What Authlib's own OIDC client does: joserfc signature check, then CodeIDToken rules
    (iss, aud, exp, iat, nonce, azp, at_hash) from OIDC Core 3.1.3.7."""
    token = jwt.decode(id_token, keyset)
    claims = CodeIDToken(token.claims, token.header,
                         options={"iss": {"essential": True, "value": issuer},
                                  "aud": {"essential": True, "value": client_id}},
                         params={"nonce": nonce, "client_id": client_id,
                                 "access_token": access_token})
    claims.validate(leeway=LEEWAY)
    assert abs(claims["iat"] - time.time()) < 300, "iat is not within 5 minutes of now"
    return claims


def test_authlib_client_login_token_userinfo_refresh_logout(idp_server, logout_receiver):
    issuer = idp_server.issuer
    http = requests.Session()
    discovery = http.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
    assert discovery.status_code == 200
    meta = discovery.json()
    assert meta["issuer"] == issuer
    keyset = KeySet.import_key_set(http.get(meta["jwks_uri"], timeout=10).json())

    # OIDC Dynamic Client Registration 1.0 3 (open in development)
    registered = http.post(meta["registration_endpoint"], timeout=10, json={
        "client_name": "Authlib e2e portal", "redirect_uris": [REDIRECT_URI],
        "post_logout_redirect_uris": [POST_LOGOUT_URI],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid profile email offline_access",
        "backchannel_logout_uri": logout_receiver.uri,
        "backchannel_logout_session_required": True})
    assert registered.status_code == 201, registered.text
    client_info = registered.json()
    client_id, client_secret = client_info["client_id"], client_info["client_secret"]

    rp = OAuth2Session(client_id, client_secret, scope="openid profile email offline_access",
                       redirect_uri=REDIRECT_URI, code_challenge_method="S256",
                       token_endpoint_auth_method="client_secret_basic")
    browser = Browser(issuer)
    try:
        # -- login: authorization code flow with PKCE S256, nonce and state ----------------
        code_verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        auth_url, state = rp.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce,
            prompt="consent")
        callback = browser.run_to_client(auth_url, REDIRECT_URI)
        assert "/login" in browser.visited and "/consent" in browser.visited
        returned = _query(callback)
        assert returned["state"] == state
        assert returned["iss"] == issuer  # RFC 9207 2
        assert "error" not in returned

        # -- token ------------------------------------------------------------------------
        token = rp.fetch_token(meta["token_endpoint"], authorization_response=callback,
                               code_verifier=code_verifier, state=state)
        assert token["token_type"].lower() == "bearer" and token["expires_in"] > 0
        assert token["refresh_token"] and token["id_token"]
        id_claims = _verify_id_token(token["id_token"], keyset, issuer=issuer,
                                     client_id=client_id, nonce=nonce,
                                     access_token=token["access_token"])
        assert id_claims["sid"] and id_claims["auth_time"]

        # -- userinfo (OIDC Core 5.3) -----------------------------------------------------
        info = rp.get(meta["userinfo_endpoint"], timeout=10)
        assert info.status_code == 200, info.text
        assert info.json()["sub"] == id_claims["sub"]
        assert info.json()["name"] == "Nguyễn Thị Minh Anh"
        assert info.json()["email"] == "minhanh.demo@example.vn"

        # -- refresh with rotation (OIDC Core 12, RFC 9700 4.14.2) ------------------------
        old_refresh = token["refresh_token"]
        refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["refresh_token"] and refreshed["refresh_token"] != old_refresh
        if "id_token" in refreshed:  # OIDC Core 12.2: same iss and sub as the first one
            again = jwt.decode(refreshed["id_token"], keyset).claims
            assert again["sub"] == id_claims["sub"] and again["iss"] == issuer
        info = rp.get(meta["userinfo_endpoint"], timeout=10)
        assert info.status_code == 200 and info.json()["sub"] == id_claims["sub"]

        replay = OAuth2Session(client_id, client_secret,
                               token_endpoint_auth_method="client_secret_basic")
        with pytest.raises(OAuthError) as refused:
            replay.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
        assert refused.value.error == "invalid_grant"
        # A replayed refresh token revokes its whole family (RFC 9700 4.14.2)
        with pytest.raises(OAuthError) as refused:
            replay.refresh_token(meta["token_endpoint"],
                                 refresh_token=refreshed["refresh_token"])
        assert refused.value.error == "invalid_grant"
        replay.close()

        # -- RP-initiated logout (OIDC RP-Initiated Logout 1.0 2, 3) -----------------------
        logout_state = "st-" + secrets.token_urlsafe(6) + "._~!$'()*+,;=:@/?"
        logout_url = meta["end_session_endpoint"] + "?" + urlencode({
            "id_token_hint": token["id_token"], "post_logout_redirect_uri": POST_LOGOUT_URI,
            "state": logout_state})
        response = browser.get(logout_url)
        assert response.status_code in (302, 303), response.text[:500]
        location = response.headers["Location"]
        assert location.split("?")[0] == POST_LOGOUT_URI
        assert _query(location) == {"state": logout_state}

        # Back-channel logout token for this session (OIDC Back-Channel Logout 1.0 2.4)
        check_logout_token(logout_receiver.next_delivery(), keyset, issuer=issuer,
                           client_id=client_id, id_claims=id_claims)

        # The SSO session is gone: prompt=none now fails (OIDC Core 3.1.2.6)
        silent_url, silent_state = rp.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48),
            nonce=secrets.token_urlsafe(16), prompt="none")
        response = browser.get(silent_url)
        assert response.status_code in (302, 303), response.text[:500]
        failed = _query(response.headers["Location"])
        assert response.headers["Location"].split("?")[0] == REDIRECT_URI
        assert failed["error"] == "login_required" and failed["state"] == silent_state
        assert failed["iss"] == issuer
    finally:
        browser.close()
        rp.close()
        http.close()
