"""ID tokens (OIDC Core 2, 3.1.3.6): claims, at_hash, signature with the client's algorithm."""

from __future__ import annotations

import time

from authlib.oidc.core.grants.util import create_half_hash
from flask import current_app

from .. import keys
from ..identity import claims_for, subject_for
from ..models import Account, Client


def build(client: Client, account: Account, *, scope: str, auth_time: int | None,
          acr: str, amr: list[str], sid: str | None, nonce: str | None = None,
          claims_request: dict | None = None, access_token: str | None = None) -> str:
    now = int(time.time())
    alg = client.meta("id_token_signed_response_alg", "RS256")
    claims = {
        "iss": current_app.config["ISSUER"],
        "sub": subject_for(client, account),
        "aud": client.client_id,
        "exp": now + current_app.config["ID_TOKEN_TTL"],
        "iat": now,
        "acr": acr,
        "amr": amr,
    }
    if sid:
        claims["sid"] = sid
    if nonce:
        claims["nonce"] = nonce
    if auth_time:  # always sent: required with max_age, harmless otherwise
        claims["auth_time"] = auth_time
    if access_token:
        claims["at_hash"] = create_half_hash(access_token, alg).decode()
    # Claims individually requested for the ID token (the `claims` parameter, OIDC Core 5.5).
    requested = {k: v for k, v in (claims_request or {}).items()
                 if k not in claims and k not in ("acr", "auth_time")}
    if requested:
        claims.update(claims_for(account, "openid", requested))
    return keys.sign(claims, alg)


def verify_hint(hint: str) -> dict:
    """Claims of an `id_token_hint` we issued; expired is fine (OIDC Core 3.1.2.1), but it must
    be an ID token: not a logout token or a signed userinfo answer, which we also sign."""
    token = keys.verify(hint)
    claims = token.claims
    if token.header.get("typ", "JWT") != "JWT" or "events" in claims or \
            not all(isinstance(claims.get(k), (int, str)) for k in ("sub", "exp", "iat")) or \
            "acr" not in claims or claims.get("iss") != current_app.config["ISSUER"]:
        raise ValueError("not an ID token issued here")
    return claims
