"""What the portal checks before it believes a token from the IdP, one check per line.

ID tokens: OIDC Core 3.1.3.7 (plus at_hash, 3.1.3.8, and the sid we need for logout).
Logout tokens: OIDC Back-Channel Logout 1.0, 2.6. Both are signed JWTs checked with the IdP's
published keys and only the algorithm registered for this client; anything else is a
TokenError with a short reason (logged, never shown to the citizen as is).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable

from joserfc import jwt
from joserfc.errors import JoseError

from .acr import satisfies_any
from .oidc import Provider

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
HASHES = {"ES256": hashlib.sha256, "RS256": hashlib.sha256}


class TokenError(Exception):
    """A token that must not be trusted; `str(exc)` says which check failed."""


def _b64_json(part: str) -> dict:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise TokenError("malformed JWT") from exc
    if not isinstance(value, dict):
        raise TokenError("malformed JWT")
    return value


def decode_signed(token: object, provider: Provider, alg: str) -> tuple[dict, dict]:
    """The header and claims of a compact JWS whose signature verifies with the IdP's key."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 16384:
        raise TokenError("not a compact JWS")
    header = _b64_json(token.split(".")[0])
    # Only the registered algorithm: refuses "none", HS256 with a public key as secret, etc.
    if header.get("alg") != alg:
        raise TokenError(f"unexpected alg {header.get('alg')!r}")
    # The IdP always names its key; a key rotation shows up as an unknown kid (re-fetched).
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("no kid in the header")
    keys = [k for k in provider.keyset(kid).keys if k.kid == kid]
    if len(keys) != 1:
        raise TokenError("the IdP does not publish this key")
    try:
        verified = jwt.decode(token, keys[0], algorithms=[alg])
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenError(f"bad signature: {exc}") from exc
    if not isinstance(verified.claims, dict):
        raise TokenError("claims are not a JSON object")
    return dict(verified.header), dict(verified.claims)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _audiences(claims: dict) -> list:
    aud = claims.get("aud")
    return aud if isinstance(aud, list) else [aud]


def _half_hash(value: str, alg: str) -> str:
    digest = HASHES[alg](value.encode()).digest()
    return base64.urlsafe_b64encode(digest[:len(digest) // 2]).rstrip(b"=").decode()


def _equal(a, b) -> bool:
    return isinstance(a, str) and isinstance(b, str) and hmac.compare_digest(a, b)


def _run(checks: list[tuple[str, Callable[[], bool]]]) -> None:
    for reason, passes in checks:
        if not passes():
            raise TokenError(reason)


def verify_id_token(token: str, *, provider: Provider, conf: dict, nonce: str,
                    acr_values: list[str], max_age: int | None, access_token: str,
                    now: float | None = None) -> dict:
    """The ID token's claims, after every check of OIDC Core 3.1.3.7 in order."""
    alg, leeway, client_id = conf["ID_TOKEN_ALG"], conf["LEEWAY"], conf["CLIENT_ID"]
    header, c = decode_signed(token, provider, alg)           # 6-8: signature, alg, key
    now = time.time() if now is None else now
    _run([
        # A logout token or another typed JWT is not an ID token.
        ("typ is not JWT", lambda: header.get("typ", "JWT") == "JWT"),
        # 2: issued by the IdP we sent the citizen to.
        ("wrong iss", lambda: c.get("iss") == conf["ISSUER"]),
        # 3: meant for us; with several audiences, azp must be us (4, 5).
        ("wrong aud", lambda: client_id in _audiences(c)),
        ("azp missing", lambda: len(_audiences(c)) == 1 or "azp" in c),
        ("wrong azp", lambda: c.get("azp", client_id) == client_id),
        # 9: not expired.
        ("expired", lambda: _number(c.get("exp")) and now < c["exp"] + leeway),
        # 10: issued recently, and not in the future.
        ("bad iat", lambda: _number(c.get("iat")) and
         now - conf["MAX_TOKEN_AGE"] - leeway <= c["iat"] <= now + leeway),
        # 11: the nonce of this very sign-in (no replay of another browser's token).
        ("wrong nonce", lambda: _equal(c.get("nonce"), nonce)),
        ("no sub", lambda: isinstance(c.get("sub"), str) and bool(c["sub"])),
        # 12: the assurance we asked for, by the IdP's ordering of acr values.
        ("acr does not satisfy the request",
         lambda: not acr_values or satisfies_any(c.get("acr"), acr_values)),
        # 13: a recent enough authentication when we sent max_age.
        ("auth_time too old", lambda: max_age is None or (
            _number(c.get("auth_time")) and now - c["auth_time"] <= max_age + leeway)),
        # 3.1.3.8: the access token is the one issued with this ID token.
        ("wrong at_hash", lambda: _equal(c.get("at_hash"), _half_hash(access_token, alg))),
        # Back-channel logout names sessions by sid; we registered session_required.
        ("no sid", lambda: isinstance(c.get("sid"), str) and bool(c["sid"])),
    ])
    return c


def verify_logout_token(token: object, *, provider: Provider, conf: dict,
                        once: Callable[[str, int], bool], now: float | None = None) -> dict:
    """The logout token's claims after OIDC Back-Channel Logout 1.0 2.6, steps 1-7; `once`
    records the jti (single use) and is called only when every other check passed."""
    alg, leeway = conf["ID_TOKEN_ALG"], conf["LEEWAY"]
    header, c = decode_signed(token, provider, alg)           # 2.6.1-3: signature, alg, key
    now = time.time() if now is None else now
    events = c.get("events")
    _run([
        # 2.4: explicitly typed, so an ID token cannot pass as a logout token.
        ("typ is not logout+jwt", lambda: header.get("typ", "logout+jwt") == "logout+jwt"),
        # 2.6.3: iss, aud and iat as for an ID token.
        ("wrong iss", lambda: c.get("iss") == conf["ISSUER"]),
        ("wrong aud", lambda: conf["CLIENT_ID"] in _audiences(c)),
        ("bad iat", lambda: _number(c.get("iat")) and
         now - conf["MAX_TOKEN_AGE"] - leeway <= c["iat"] <= now + leeway),
        ("expired", lambda: "exp" not in c or (_number(c["exp"]) and now < c["exp"] + leeway)),
        # 2.6.4-5: a sub, a sid, or both; we registered session_required, so sid is expected
        # when sub is absent and either must be a non-empty string.
        ("no sid or sub", lambda: any(isinstance(c.get(k), str) and c[k]
                                      for k in ("sid", "sub"))),
        ("bad sid", lambda: "sid" not in c or (isinstance(c["sid"], str) and bool(c["sid"]))),
        ("bad sub", lambda: "sub" not in c or (isinstance(c["sub"], str) and bool(c["sub"]))),
        # 2.6.6: the back-channel logout event, whose value is a JSON object.
        ("no logout event", lambda: isinstance(events, dict) and
         isinstance(events.get(BACKCHANNEL_EVENT), dict)),
        # 2.6.7: a nonce would make it look like an ID token; forbidden.
        ("nonce present", lambda: "nonce" not in c),
        ("no jti", lambda: isinstance(c.get("jti"), str) and 0 < len(c["jti"]) <= 200),
        # 2.6.8 (optional, done): the same logout token is accepted once.
        ("jti replayed", lambda: once(f"jti:{c['jti']}", conf["MAX_TOKEN_AGE"] + 2 * leeway)),
    ])
    return c
