"""JWT-Secured Authorization Requests (RFC 9101) and OIDC Core 6 request objects.

`alg: none` is accepted only from a client that registered `request_object_signing_alg: none`;
signed objects must use RS256 or ES256 and a key from the client's jwks or jwks_uri. The
object's parameters supersede those of the query (OIDC Core 6.3.3); `client_id` must agree.
"""

from __future__ import annotations

import json
import time

from joserfc import jwt
from joserfc.errors import JoseError

from ..clients import client_keyset
from ..crypto import b64url
from ..fetch import FetchError, fetch_text
from ..models import Client
from .responses import AuthorizationError

MAX_OBJECT_LENGTH = 16 * 1024


def _b64decode(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _header(token: str) -> dict:
    try:
        header = json.loads(_b64decode(token.split(".")[0]))
    except (ValueError, IndexError, RecursionError) as exc:
        raise AuthorizationError("invalid_request_object", "request object is malformed") \
            from exc
    if not isinstance(header, dict):
        raise AuthorizationError("invalid_request_object", "request object is malformed")
    return header


def decode_request_object(token: str, client: Client, issuer: str, leeway: int) -> dict:
    if not isinstance(token, str) or len(token) > MAX_OBJECT_LENGTH or token.count(".") != 2:
        raise AuthorizationError("invalid_request_object", "request object is malformed")
    header = _header(token)
    alg = header.get("alg")
    registered = client.meta("request_object_signing_alg")
    if alg == "none":
        if registered != "none" or not token.endswith("."):
            raise AuthorizationError("invalid_request_object",
                                     "unsigned request objects are not allowed for this client")
        try:
            claims = json.loads(_b64decode(token.split(".")[1]))
        except (ValueError, RecursionError) as exc:
            raise AuthorizationError("invalid_request_object", "request object is malformed") \
                from exc
    else:
        if alg not in ("RS256", "ES256") or (registered and registered != alg):
            raise AuthorizationError("invalid_request_object",
                                     "request object algorithm not allowed")
        try:
            decoded = jwt.decode(token, client_keyset(client), algorithms=[alg])
        except (JoseError, FetchError, ValueError, TypeError, KeyError, RecursionError) as exc:
            raise AuthorizationError("invalid_request_object",
                                     "request object signature is invalid") from exc
        claims = decoded.claims
    if not isinstance(claims, dict):
        raise AuthorizationError("invalid_request_object", "request object is malformed")
    now = time.time()
    if "exp" in claims and (not isinstance(claims["exp"], (int, float)) or
                            claims["exp"] + leeway < now):
        raise AuthorizationError("invalid_request_object", "request object has expired")
    if "nbf" in claims and (not isinstance(claims["nbf"], (int, float)) or
                            claims["nbf"] - leeway > now):
        raise AuthorizationError("invalid_request_object", "request object is not yet valid")
    if "iss" in claims and claims["iss"] != client.client_id:
        raise AuthorizationError("invalid_request_object", "request object issuer mismatch")
    if "aud" in claims:
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if issuer not in aud:
            raise AuthorizationError("invalid_request_object", "request object audience mismatch")
    if claims.get("client_id", client.client_id) != client.client_id:
        raise AuthorizationError("invalid_request_object", "client_id mismatch")
    params = {}
    for name, value in claims.items():
        if name in ("iss", "aud", "exp", "nbf", "iat", "jti", "request", "request_uri"):
            continue
        if name == "claims" and isinstance(value, dict):
            value = json.dumps(value)
        elif name == "max_age" and isinstance(value, int):
            value = str(value)
        if not isinstance(value, str):
            raise AuthorizationError("invalid_request_object", f"parameter {name} is malformed")
        params[name] = value
    return params


def fetch_request_uri(uri: str, client: Client) -> str:
    """OIDC Core 6.2: fetch a request object by reference, only from a registered URI."""
    base = uri.split("#")[0]
    if base not in client.meta("request_uris", []):
        raise AuthorizationError("invalid_request_uri", "request_uri is not registered")
    try:
        return fetch_text(uri, accept="application/oauth-authz-req+jwt, application/jwt").strip()
    except (FetchError, UnicodeDecodeError) as exc:
        raise AuthorizationError("invalid_request_uri", "request_uri could not be fetched") \
            from exc


__all__ = ["b64url", "decode_request_object", "fetch_request_uri"]
