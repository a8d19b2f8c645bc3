"""Signing keys (RFC 7517 JWKS): RS256 and ES256, private halves encrypted in the database.

`rotate()` adds a new key per algorithm and retires the previous one: a retired key no longer
signs but stays published in the JWKS for KEY_RETIREMENT_GRACE so that what it signed verifies
until it expires. A key store behind this module can later move to an HSM.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

from flask import current_app
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from . import crypto
from .extensions import db
from .models import SigningKey, utcnow

_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()
CACHE_SECONDS = 30  # other processes pick up a rotation within this many seconds


def _generate(alg: str) -> SigningKey:
    kid = f"{alg.lower()}-{utcnow():%Y%m%d}-{crypto.random_token(6)}"
    params = {"kid": kid, "alg": alg, "use": "sig"}
    key = RSAKey.generate_key(2048, parameters=params) if alg == "RS256" else \
        ECKey.generate_key("P-256", parameters=params)
    return SigningKey(kid=kid, alg=alg,
                      private_encrypted=crypto.encrypt(json.dumps(key.as_dict(private=True))),
                      public_jwk=key.as_dict(private=False))


def ensure_keys() -> None:
    """Create one active key per algorithm if none exists (first start)."""
    from .settings import SIGNING_ALGS

    for alg in SIGNING_ALGS:
        if not db.session.scalar(db.select(SigningKey).filter_by(alg=alg, retired_at=None)):
            db.session.add(_generate(alg))
    db.session.commit()
    invalidate()


def rotate() -> list[str]:
    """Retire every active key and add a fresh one per algorithm; returns the new kids."""
    from .settings import SIGNING_ALGS

    now = utcnow()
    new = []
    for alg in SIGNING_ALGS:
        for old in db.session.scalars(db.select(SigningKey).filter_by(alg=alg, retired_at=None)):
            old.retired_at = now
        key = _generate(alg)
        db.session.add(key)
        new.append(key.kid)
    db.session.commit()
    invalidate()
    return new


def prune() -> int:
    """Delete retired keys whose grace period is over; returns how many went."""
    cutoff = utcnow() - dt.timedelta(seconds=current_app.config["KEY_RETIREMENT_GRACE"])
    old = db.session.scalars(db.select(SigningKey).where(SigningKey.retired_at < cutoff)).all()
    for key in old:
        db.session.delete(key)
    db.session.commit()
    invalidate()
    return len(old)


def invalidate() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def _load() -> dict:
    with _CACHE_LOCK:
        if _CACHE and _CACHE["at"] > time.monotonic() - CACHE_SECONDS and \
                _CACHE["db"] == current_app.config["DATABASE_URL"]:
            return _CACHE
    grace = dt.timedelta(seconds=current_app.config["KEY_RETIREMENT_GRACE"])
    now = utcnow()
    rows = db.session.scalars(db.select(SigningKey).order_by(SigningKey.created_at)).all()
    published, active = [], {}
    for row in rows:
        if row.retired_at is not None and row.retired_at + grace < now:
            continue
        published.append(row.public_jwk)
        if row.retired_at is None:
            data = json.loads(crypto.decrypt(row.private_encrypted))
            active[row.alg] = RSAKey.import_key(data) if row.alg == "RS256" else \
                ECKey.import_key(data)
    state = {"at": time.monotonic(), "db": current_app.config["DATABASE_URL"],
             "jwks": {"keys": published}, "active": active,
             "public": KeySet.import_key_set({"keys": published})}
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE.update(state)
    return state


def jwks() -> dict:
    """The public JWKS: active keys and retired keys still within their grace period."""
    return _load()["jwks"]


def sign(claims: dict, alg: str = "RS256", typ: str | None = None) -> str:
    key = _load()["active"].get(alg)
    if key is None:
        raise RuntimeError(f"no active {alg} signing key: run `flask keys rotate`")
    header = {"alg": alg, "kid": key.kid}
    if typ:
        header["typ"] = typ
    return jwt.encode(header, claims, key, algorithms=[alg])


def verify(token: str) -> jwt.Token:
    """Verify a JWT we signed (any published key). Claim checks are the caller's."""
    return jwt.decode(token, _load()["public"], algorithms=["RS256", "ES256"])
