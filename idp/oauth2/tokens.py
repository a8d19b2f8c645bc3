"""Access tokens (opaque, in Redis), refresh token families (database), authorization codes.

A *grant* is everything issued from one authorization: the code, the access tokens and the
refresh-token family. Replaying a code or reusing a rotated refresh token revokes the grant
(RFC 9700 4.5 and 4.14.2): its refresh tokens are marked revoked and a Redis marker makes its
access tokens fail at userinfo and introspection until they would have expired anyway.
"""

from __future__ import annotations

import datetime as dt
import time

from flask import current_app

from .. import audit, store
from ..crypto import random_token, sha256_b64
from ..extensions import db
from ..models import RefreshToken, utcnow


def _conf(name: str) -> int:
    return current_app.config[name]


# -- authorization codes -------------------------------------------------------------------

def save_code(data: dict) -> str:
    """Store a new code for AUTH_CODE_TTL seconds; 256 random bits (RFC 6749 10.10)."""
    code = random_token(32)
    store.put_json(f"code:{sha256_b64(code)}", data, _conf("AUTH_CODE_TTL"))
    return code


def redeem_code(code: str) -> dict | None:
    """Single use: the first redemption wins; a replay revokes the grant it issued."""
    if not isinstance(code, str) or len(code) > 200:
        return None
    digest = sha256_b64(code)
    data = store.get_json(f"code:{digest}")
    # Remember the code long after expiry so a late replay is still caught.
    first = store.once(f"code-used:{digest}", 3600,
                       value=data["grant_id"] if data else "-")
    if not first:
        grant_id = store.kv().get(f"code-used:{digest}")
        if grant_id and grant_id != "-":
            revoke_grant(grant_id, reason="code_replay")
        return None
    if data:
        store.kv().delete(f"code:{digest}")
    return data


# -- access tokens --------------------------------------------------------------------------

def issue_access_token(data: dict) -> tuple[str, int]:
    token = random_token(32)
    ttl = _conf("ACCESS_TOKEN_TTL")
    # issued_at is sub-second so that a token issued just after a consent withdrawal, within
    # the same second, is not taken for one issued before it.
    store.put_json(f"at:{sha256_b64(token)}", {**data, "exp": int(time.time()) + ttl,
                                               "issued_at": time.time()}, ttl)
    return token, ttl


def lookup_access_token(token: str) -> dict | None:
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    kv = store.kv()
    raw = kv.get(f"at:{sha256_b64(token)}")
    if not raw:
        return None
    import json

    data = json.loads(raw)
    grant_revoked, consent_revoked_at = kv.mget(
        f"revoked-grant:{data.get('grant_id')}",
        f"revoked-ac:{data.get('account_id')}:{data['client_id']}")
    issued_at = data.get("issued_at", data["iat"])
    if grant_revoked or (consent_revoked_at and float(consent_revoked_at) >= issued_at):
        return None
    return data


def revoke_access_token(token: str) -> bool:
    return bool(store.kv().delete(f"at:{sha256_b64(token)}"))


# -- refresh tokens --------------------------------------------------------------------------

def issue_refresh_token(*, grant_id: str, client_id: str, account_id: str, scope: str,
                        context: dict, expires_at: dt.datetime | None = None) -> str:
    token = random_token(32)
    expires_at = expires_at or utcnow() + dt.timedelta(seconds=_conf("REFRESH_TOKEN_TTL"))
    db.session.add(RefreshToken(token_hash=sha256_b64(token), grant_id=grant_id,
                                client_id=client_id, account_id=account_id, scope=scope,
                                context=context, expires_at=expires_at))
    return token


def find_refresh_token(token: str) -> RefreshToken | None:
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    return db.session.get(RefreshToken, sha256_b64(token))


def mark_refresh_used(token_hash: str, commit: bool = True) -> bool:
    result = db.session.execute(
        db.update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.used_at.is_(None),
               RefreshToken.revoked_at.is_(None))
        .values(used_at=utcnow()))
    if commit:
        db.session.commit()
    return result.rowcount == 1


def refresh_token_usable(row: RefreshToken) -> bool:
    return row.used_at is None and row.revoked_at is None and row.expires_at > utcnow()


def revoke_grant(grant_id: str, reason: str) -> None:
    """Revoke every token of a grant: refresh family in the database, access tokens in Redis."""
    now = utcnow()
    rows = db.session.scalars(db.select(RefreshToken).filter_by(grant_id=grant_id)).all()
    for row in rows:
        if row.revoked_at is None:
            row.revoked_at = now
    store.kv().set(f"revoked-grant:{grant_id}", reason, ex=_conf("ACCESS_TOKEN_TTL") + 60)
    client_id = rows[0].client_id if rows else None
    account_id = rows[0].account_id if rows else None
    audit.record("grant.revoked", account_id=account_id, client_id=client_id, reason=reason)


def revoke_for_client(account_id: str, client_id: str) -> None:
    """Revoke all grants of an account at one client (consent withdrawn)."""
    grants = db.session.scalars(db.select(RefreshToken.grant_id).filter_by(
        account_id=account_id, client_id=client_id).distinct()).all()
    for grant_id in grants:
        revoke_grant(grant_id, reason="consent_revoked")
    store.kv().set(f"revoked-ac:{account_id}:{client_id}", repr(time.time()),
                   ex=_conf("ACCESS_TOKEN_TTL") + 60)
    db.session.commit()


def new_grant_id() -> str:
    return random_token(16)
