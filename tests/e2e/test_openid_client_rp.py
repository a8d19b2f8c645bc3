"""An independent relying party, npm openid-client v6 (node/rp.mjs), against the running IdP.

openid-client is the Node RP certified by the OpenID Foundation; it validates discovery, the
authorization response (state, RFC 9207 iss), the token response and ID token (signature via
non-repudiation checks, iss, aud, exp, iat, nonce, at_hash), userinfo's sub, and the refreshed
ID token. Re-creates oidcc-server, oidcc-refresh-token, RP-initiated logout
(oidcc-rp-initiated-logout, then prompt=none -> login_required) and back-channel logout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from joserfc.jwk import KeySet

from .browser import CITIZEN_PASSWORD, CITIZEN_PID
from .rp_checks import check_logout_token

pytestmark = pytest.mark.e2e

NODE_DIR = Path(__file__).resolve().parent / "node"
REDIRECT_URI = "https://portal-node.example.vn/callback"
POST_LOGOUT_URI = "https://portal-node.example.vn/signed-out"
MIN_NODE_MAJOR = 20


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with openid-client installed from the committed lock file."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs npm)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30,
                             check=False).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < MIN_NODE_MAJOR:
        pytest.skip(f"openid-client v6 needs Node.js {MIN_NODE_MAJOR}+ (WebCrypto, fetch); "
                    f"this node is {version}")
    installed = NODE_DIR / "node_modules" / ".package-lock.json"  # written by npm ci
    if not installed.exists() or \
            installed.stat().st_mtime < (NODE_DIR / "package-lock.json").stat().st_mtime:
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so openid-client cannot be installed "
                        "(Debian: apt-get install npm)")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return node


def test_openid_client_login_token_userinfo_refresh_logout(idp_server, logout_receiver, node):
    env = {**os.environ, "ISSUER": idp_server.issuer, "REDIRECT_URI": REDIRECT_URI,
           "POST_LOGOUT_REDIRECT_URI": POST_LOGOUT_URI,
           "BACKCHANNEL_LOGOUT_URI": logout_receiver.uri,
           "CITIZEN_PID": CITIZEN_PID, "CITIZEN_PASSWORD": CITIZEN_PASSWORD}
    run = subprocess.run([node, "rp.mjs"], cwd=NODE_DIR, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, f"rp.mjs failed:\n{run.stderr}\n{run.stdout}"
    out = json.loads(run.stdout)

    # Login through login and consent pages, callback checked by the library (RFC 9207)
    assert out["issuer"] == idp_server.issuer
    assert "/login" in out["visited"] and "/consent" in out["visited"]
    assert out["callback_iss"] == idp_server.issuer

    # Token response and ID token (OIDC Core 3.1.3.3, 3.1.3.7)
    assert out["token_type"].lower() == "bearer" and out["expires_in"] > 0
    claims = out["claims"]
    assert claims["iss"] == idp_server.issuer and claims["aud"] == out["client_id"]
    assert claims["sid"] and claims["auth_time"] and claims["at_hash"]

    # Userinfo (OIDC Core 5.3.2: sub equal to the ID token's, checked by the library too)
    assert out["userinfo"]["sub"] == claims["sub"]
    assert out["userinfo"]["name"] == "Nguyễn Thị Minh Anh"
    assert out["userinfo"]["email_verified"] is True

    # Refresh with rotation; the old refresh token refused (OIDC Core 12, RFC 9700 4.14.2)
    refreshed = out["refreshed"]
    assert refreshed["access_token_changed"] and refreshed["refresh_token_rotated"]
    assert refreshed["userinfo_sub"] == claims["sub"]
    assert refreshed["id_token_sub"] in (None, claims["sub"])
    assert out["replayed_refresh"] is not None, "the rotated-out refresh token still worked"
    assert out["replayed_refresh"]["error"] == "invalid_grant"
    assert out["replayed_refresh"]["status"] == 400

    # RP-initiated logout: back to the registered URI with the state byte for byte
    logout = out["logout"]
    assert logout["status"] in (302, 303)
    assert logout["location"] == POST_LOGOUT_URI
    assert logout["params"] == {"state": logout["sent_state"]}

    # Back-channel logout token for this session (OIDC Back-Channel Logout 1.0 2.4)
    keyset = KeySet.import_key_set(requests.get(f"{idp_server.issuer}/jwks", timeout=10).json())
    check_logout_token(logout_receiver.next_delivery(), keyset, issuer=idp_server.issuer,
                       client_id=out["client_id"], id_claims=claims)

    # After logout, a silent request fails with login_required (OIDC Core 3.1.2.6)
    assert out["prompt_none_after_logout"] is not None
    assert out["prompt_none_after_logout"]["name"] == "AuthorizationResponseError"
    assert out["prompt_none_after_logout"]["error"] == "login_required"
