"""The register's own ES256 signing key (RFC 7517/7518) for status notifications.

Generated once, on first start, and kept in the register's database; `/jwks.json` publishes its
public half. The private half never leaves this module: it is not logged, not returned by any
route, and `repr()` of the key row does not show it. (A production register would keep it in an
HSM or at least encrypted; the stub stores it in clear, which the contract allows.)
"""

from __future__ import annotations

import json
import secrets

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.exc import IntegrityError

from register.models import RegisterKey, db, utcnow

ALG = "ES256"


def ensure_key() -> str:
    """Create the signing key if there is none; returns its kid. Safe to run concurrently."""
    row = db.session.scalar(db.select(RegisterKey).order_by(RegisterKey.created_at))
    if row is not None:
        return row.kid
    kid = f"register-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": ALG, "use": "sig"})
    db.session.add(RegisterKey(kid=kid, alg=ALG, private_jwk=json.dumps(key.as_dict(private=True)),
                               public_jwk=key.as_dict(private=False)))
    try:
        db.session.commit()
    except IntegrityError:  # another worker won the race: use its key
        db.session.rollback()
    return db.session.scalar(db.select(RegisterKey.kid).order_by(RegisterKey.created_at))


def _active() -> ECKey:
    """The newest key (read each time: signing happens only on status changes)."""
    row = db.session.scalar(db.select(RegisterKey).order_by(RegisterKey.created_at.desc()))
    if row is None:
        ensure_key()
        row = db.session.scalar(db.select(RegisterKey).order_by(RegisterKey.created_at.desc()))
    return ECKey.import_key(json.loads(row.private_jwk))


def jwks() -> dict:
    """Public keys of every stored key (a rotated-out key keeps verifying what it signed)."""
    rows = db.session.scalars(db.select(RegisterKey).order_by(RegisterKey.created_at)).all()
    return {"keys": [row.public_jwk for row in rows]}


def sign(claims: dict, typ: str) -> str:
    key = _active()
    return jwt.encode({"alg": ALG, "kid": key.kid, "typ": typ}, claims, key, algorithms=[ALG])
