"""A stand-in IdP for unit tests of the portal's checks: an ES256 key published as a JWKS in
memory, and helpers that sign ID and logout tokens the way the real IdP does."""

from __future__ import annotations

import base64
import hashlib
import json
import time

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from clients.portal.oidc import Provider
from clients.portal.verify import BACKCHANNEL_EVENT

ISSUER = "https://idp.example.vn"
CLIENT_ID = "portal-test"
CONF = {"ISSUER": ISSUER, "CLIENT_ID": CLIENT_ID, "ID_TOKEN_ALG": "ES256", "LEEWAY": 30,
        "MAX_TOKEN_AGE": 300, "HTTP_TIMEOUT": 1, "JWKS_CACHE_SECONDS": 300}
IDP_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-es256", "alg": "ES256"})
# Same kid, another key: what a forger without the IdP's private key can make.
FORGED_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-es256", "alg": "ES256"})


class FakeProvider(Provider):
    def __init__(self, conf: dict | None = None):
        super().__init__(conf or CONF)
        self._meta = {"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks",
                      "end_session_endpoint": f"{ISSUER}/logout"}

    def keyset(self, kid=None):
        return KeySet([ECKey.import_key(IDP_KEY.as_dict(private=False))])


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def sign(claims: dict, key=IDP_KEY, header: dict | None = None) -> str:
    return jwt.encode({"alg": "ES256", "kid": "idp-es256", **(header or {})}, claims, key,
                      algorithms=["ES256"])


def unsigned(claims: dict) -> str:
    """alg none (RFC 7519 6): no signature at all."""
    return f"{b64({'alg': 'none', 'kid': 'idp-es256'})}.{b64(claims)}."


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def id_claims(**changes) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "pairwise-sub", "aud": CLIENT_ID, "exp": now + 600,
              "iat": now, "auth_time": now - 5, "nonce": "n-0S6_WzA2Mj", "acr":
              "urn:dinhdanh:loa:1", "amr": ["pwd"], "sid": "sid-1", "at_hash": at_hash("AT")}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def logout_claims(**changes) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "iat": now, "exp": now + 120,
              "jti": f"jti-{time.monotonic_ns()}", "events": {BACKCHANNEL_EVENT: {}},
              "sub": "pairwise-sub", "sid": "sid-1"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}
