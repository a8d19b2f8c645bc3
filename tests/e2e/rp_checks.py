"""Checks a relying party makes on what the IdP sends it outside the browser."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import KeySet

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def check_logout_token(delivery: dict, keyset: KeySet, *, issuer: str, client_id: str,
                       id_claims: dict) -> dict:
    """OIDC Back-Channel Logout 1.0 2.4 and 2.6: a POST with only `logout_token`, signed by the
    IdP, for this client and this session; returns its claims."""
    assert delivery["content_type"].startswith("application/x-www-form-urlencoded")
    assert list(delivery["form"]) == ["logout_token"]
    assert len(delivery["form"]["logout_token"]) == 1
    token = jwt.decode(delivery["form"]["logout_token"][0], keyset)
    claims = token.claims
    assert token.header.get("typ") in (None, "logout+jwt")
    assert claims["iss"] == issuer
    assert client_id in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert claims["events"] == {BACKCHANNEL_EVENT: {}}
    assert claims["jti"] and "nonce" not in claims
    assert abs(claims["iat"] - time.time()) < 300, "iat is not within 5 minutes of now"
    assert claims["sid"] == id_claims["sid"]
    assert claims.get("sub", id_claims["sub"]) == id_claims["sub"]
    return claims
