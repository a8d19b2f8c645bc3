"""Client authentication: the IdP's signed JWT client assertion as a bearer token.

RFC 7523 section 3 rules applied to `Authorization: Bearer <JWT>`: signed by the IdP's OIDC
signing keys (RS256 or ES256, `kid` required), verified against its JWKS (fetched from
REGISTER_IDP_JWKS_URL with a timeout and a size cap, cached, refetched on an unknown kid at most
every REGISTER_JWKS_REFETCH_SECONDS; or given inline in REGISTER_IDP_JWKS), then the claims as a
table of checks: `iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, lifetime, `jti`, `purpose`. The `jti`
is single use: stored (hashed with `iss`) in the database until it could no longer verify.
Every failure is a 401 `invalid_client` whose description says which check failed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
from flask import current_app, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError

from register.errors import Unauthorized, Unavailable
from register.models import UsedAssertion, db, utcnow

ALGORITHMS = ("RS256", "ES256")
MAX_TOKEN_LENGTH = 8 * 1024
MAX_CLAIM_LENGTH = 200


@dataclass(frozen=True)
class Caller:
    """Who called and why, from a verified assertion."""

    client_id: str
    purpose: str
    jti: str


# --- the IdP's keys -------------------------------------------------------------------------
class IdpKeys:
    """The IdP's JWKS: inline (tests) or fetched and cached; one per app."""

    def __init__(self, conf: dict):
        self.conf = conf
        self.lock = threading.Lock()
        self.keyset: KeySet | None = None
        self.fetched_at = 0.0
        if conf["REGISTER_IDP_JWKS"]:
            self.keyset = KeySet.import_key_set(json.loads(conf["REGISTER_IDP_JWKS"]))

    def _fetch(self) -> KeySet:
        conf = self.conf
        timeout = conf["REGISTER_JWKS_TIMEOUT"]
        cap = conf["REGISTER_JWKS_MAX_BYTES"]
        with requests.get(conf["REGISTER_IDP_JWKS_URL"], timeout=(timeout, timeout),
                          stream=True, allow_redirects=False,
                          headers={"Accept": "application/json"}) as resp:
            if resp.status_code != 200:
                raise ValueError(f"JWKS answered {resp.status_code}")
            body = b""
            for chunk in resp.iter_content(16 * 1024):
                body += chunk
                if len(body) > cap:
                    raise ValueError("JWKS document too large")
        return KeySet.import_key_set(json.loads(body))

    def find(self, kid: str):
        """The key with this kid, or None; may fetch (never more often than the settings say)."""
        if self.conf["REGISTER_IDP_JWKS"]:
            return _by_kid(self.keyset, kid)
        with self.lock:
            now = time.monotonic()
            age = now - self.fetched_at
            stale = self.keyset is None or age > self.conf["REGISTER_JWKS_CACHE_SECONDS"]
            unknown = _by_kid(self.keyset, kid) is None
            if stale or (unknown and age >= self.conf["REGISTER_JWKS_REFETCH_SECONDS"]):
                self.fetched_at = now  # also after a failure: no hammering of a sick IdP
                try:
                    self.keyset = self._fetch()
                except (requests.RequestException, ValueError, JoseError, TypeError,
                        KeyError) as exc:
                    current_app.logger.warning("IdP JWKS fetch failed: %s",
                                               type(exc).__name__)
                    if self.keyset is None:
                        raise Unavailable("the IdP's signing keys cannot be fetched", 5) from exc
            return _by_kid(self.keyset, kid)


def _by_kid(keyset: KeySet | None, kid: str):
    if keyset is None:
        return None
    for key in keyset.keys:
        if key.kid == kid:
            return key
    return None


# --- checks ---------------------------------------------------------------------------------
def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a Bearer client assertion is required")
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise Unauthorized("the client assertion is not a compact JWS")
    return token


def _header(token: str) -> dict:
    part = token.split(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("the client assertion header is malformed") from exc
    if not isinstance(header, dict):
        raise Unauthorized("the client assertion header is malformed")
    if header.get("alg") not in ALGORITHMS:
        raise Unauthorized(f"alg must be one of {', '.join(ALGORITHMS)}")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise Unauthorized("the client assertion header has no kid")
    if "crit" in header:
        raise Unauthorized("critical header parameters are not supported")
    return header


def _number(claims: dict, name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unauthorized(f"claim {name} is missing or not a number")
    return value


def _short_string(claims: dict, name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CLAIM_LENGTH:
        raise Unauthorized(f"claim {name} is missing or not a short string")
    return value


def _audience_ok(claims: dict, conf: dict, _now: float) -> bool:
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    return conf["REGISTER_BASE_URL"] in auds


# (what is checked, check(claims, conf, now) -> bool, description when it fails)
CLAIM_CHECKS = (
    ("iss", lambda c, conf, now: c.get("iss") == conf["REGISTER_TRUSTED_ISSUER"],
     "iss is not the trusted issuer"),
    ("sub", lambda c, conf, now: c.get("sub") == conf["REGISTER_CLIENT_ID"],
     "sub is not the registered client"),
    ("aud", _audience_ok, "aud does not name this register"),
    ("exp", lambda c, conf, now: _number(c, "exp") + conf["REGISTER_JWT_LEEWAY"] >= now,
     "the client assertion has expired"),
    ("iat", lambda c, conf, now: _number(c, "iat") - conf["REGISTER_JWT_LEEWAY"] <= now,
     "iat is in the future"),
    ("nbf", lambda c, conf, now: "nbf" not in c or
     _number(c, "nbf") - conf["REGISTER_JWT_LEEWAY"] <= now, "the assertion is not yet valid"),
    ("lifetime", lambda c, conf, now: 0 <= _number(c, "exp") - _number(c, "iat")
     <= conf["REGISTER_ASSERTION_MAX_LIFETIME"], "exp - iat exceeds the allowed lifetime"),
    ("jti", lambda c, conf, now: bool(_short_string(c, "jti")), "jti is missing"),
    ("purpose", lambda c, conf, now: bool(_short_string(c, "purpose")), "purpose is missing"),
)


def _consume_jti(claims: dict, conf: dict) -> None:
    """Single use: the first call with this (iss, jti) wins; later ones are replays."""
    key = hashlib.sha256(f"{claims['iss']}\x1f{claims['jti']}".encode()).hexdigest()
    now = utcnow()
    keep = claims["exp"] + conf["REGISTER_JWT_LEEWAY"] - time.time()
    db.session.add(UsedAssertion(jti_key=key, expires_at=now + timedelta(seconds=keep + 1)))
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Unauthorized("this client assertion (jti) was already used") from exc
    _prune(now)


_LAST_PRUNE = {"at": 0.0}


def _prune(now) -> None:
    """Forget jti values that could no longer verify, at most once a minute per process."""
    if time.monotonic() - _LAST_PRUNE["at"] < 60:
        return
    _LAST_PRUNE["at"] = time.monotonic()
    db.session.execute(db.delete(UsedAssertion).where(UsedAssertion.expires_at < now))
    db.session.commit()


def authenticate() -> Caller:
    """Verify the request's client assertion; raises Unauthorized (401) or Unavailable (503)."""
    conf = current_app.config
    token = _bearer()
    header = _header(token)
    key = current_app.extensions["register_idp_keys"].find(header["kid"])
    if key is None:
        raise Unauthorized("no IdP key has this kid")
    if key.get("alg") not in (None, header["alg"]):
        raise Unauthorized("the key's alg does not match the header's alg")
    try:
        claims = jwt.decode(token, key, algorithms=[header["alg"]]).claims
    except (JoseError, ValueError, TypeError) as exc:
        raise Unauthorized("the client assertion signature is invalid") from exc
    if not isinstance(claims, dict):
        raise Unauthorized("the client assertion claims are malformed")
    now = time.time()
    for _name, check, description in CLAIM_CHECKS:
        if not check(claims, conf, now):
            raise Unauthorized(description)
    _consume_jti(claims, conf)
    return Caller(client_id=claims["sub"], purpose=claims["purpose"].strip(), jti=claims["jti"])
