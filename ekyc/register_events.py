"""Status notifications from the population register: Security Event Tokens pushed to us.

RFC 8417 (SET) delivered by RFC 8935 (push-based SET delivery over HTTP):
`POST /ekyc/register-events` with `Content-Type: application/secevent+jwt` and the signed SET
as the body. Verified with every option spelled out: header `typ` secevent+jwt, `alg` ES256 or
RS256 with a `kid` found in the register's JWKS (REGISTER_JWKS inline for tests, else fetched
from REGISTER_URL/jwks.json, cached, refetched on an unknown kid at most every 30 s); claims
`iss` = REGISTER_URL, `aud` = our issuer, `iat` no older than REGISTER_EVENT_MAX_AGE and not in
the future (JWT_LEEWAY), `jti` single use, one `urn:dinhdanh:register:status` event.

Single use: the first SET with a jti is acted on; the same jti again changes nothing. It is
answered 202 all the same, because the register re-delivers a SET (same jti, fresh iat) until
it sees a 2xx, so a delivery whose answer was lost must not be retried forever. A forged,
stale, misaddressed or malformed SET is refused with 400.

A citizen who died or whose card was revoked loses their electronic identity at once: the
account is locked, every SSO session ends with back-channel logout to the portals in it,
every refresh token is revoked, and the audit log records `account_locked_register`.
A status back to `alive` does not unlock anything: an operator does (the console issue).
Success is 202 Accepted; errors are 400 with `{"err", "description"}` (RFC 8935 2.3),
repeated as `error`/`error_description` like every other JSON error of the project.

The JWKS is fetched through the register client's session (timeouts, size cap), not
`idp.fetch`: the register URL is operator configuration for an internal service, see
`ekyc.register_client`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time

from flask import Blueprint, current_app, jsonify, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp import audit, sessions, store
from idp.extensions import db
from idp.models import ACCOUNT_LOCKED, Account, RefreshToken

from . import issuance

log = logging.getLogger(__name__)
bp = Blueprint("ekyc_register_events", __name__)
STATUS_EVENT = "urn:dinhdanh:register:status"
CONTENT_TYPE = "application/secevent+jwt"
ALGORITHMS = ("ES256", "RS256")
LOCKING_STATUSES = ("deceased", "card_revoked")
STATUSES = ("alive",) + LOCKING_STATUSES
MAX_BODY = 16 * 1024
REFETCH_SECONDS = 30
CACHE_SECONDS = 600
_KEYS: dict = {}
_KEYS_LOCK = threading.Lock()


class SetRejected(Exception):
    """The SET is refused: RFC 8935 error code and a description (no personal data)."""

    def __init__(self, err: str, description: str):
        super().__init__(description)
        self.err = err
        self.description = description


# -- keys ----------------------------------------------------------------------------------------

def _fetch_keyset() -> KeySet:
    from . import register_client

    return KeySet.import_key_set(register_client.jwks())


def _find_key(kid: str):
    conf = current_app.config
    if conf["REGISTER_JWKS"]:
        keyset = KeySet.import_key_set(json.loads(conf["REGISTER_JWKS"]))
        return next((k for k in keyset.keys if k.kid == kid), None)
    from .register_client import RegisterError, RegisterUnavailable

    with _KEYS_LOCK:
        cached = _KEYS.get(conf["REGISTER_URL"])
        now = time.monotonic()
        keyset, fetched = cached if cached else (None, 0.0)
        known = keyset is not None and any(k.kid == kid for k in keyset.keys)
        if keyset is None or now - fetched > CACHE_SECONDS or \
                (not known and now - fetched > REFETCH_SECONDS):
            try:
                keyset, fetched = _fetch_keyset(), now
            except (RegisterUnavailable, RegisterError, JoseError, ValueError, TypeError) as exc:
                log.warning("register JWKS fetch failed: %s", type(exc).__name__)
                fetched = now  # no hammering; keep the old keys if any
            _KEYS[conf["REGISTER_URL"]] = (keyset, fetched)
    if keyset is None:
        return None
    return next((k for k in keyset.keys if k.kid == kid), None)


def forget_keys() -> None:
    with _KEYS_LOCK:
        _KEYS.clear()


# -- verification --------------------------------------------------------------------------------

def _header(token: str) -> dict:
    if token.count(".") != 2:
        raise SetRejected("invalid_request", "the body is not a compact JWS")
    part = token.split(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SetRejected("invalid_request", "the JWS header is malformed") from exc
    if not isinstance(header, dict):
        raise SetRejected("invalid_request", "the JWS header is malformed")
    if str(header.get("typ", "")).lower() not in ("secevent+jwt", CONTENT_TYPE):
        raise SetRejected("invalid_request", "typ must be secevent+jwt")
    if header.get("alg") not in ALGORITHMS:
        raise SetRejected("invalid_request", "alg must be ES256 or RS256")
    if not isinstance(header.get("kid"), str) or "crit" in header:
        raise SetRejected("invalid_key", "kid missing or unsupported header")
    return header


def _number(claims: dict, name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SetRejected("invalid_request", f"{name} is missing or not a number")
    return value


def _audience(claims: dict, conf: dict, _now: float) -> bool:
    aud = claims.get("aud")
    return conf["ISSUER"] in (aud if isinstance(aud, list) else [aud])


def _events(claims: dict, _conf: dict, _now: float) -> bool:
    event = (claims.get("events") or {}).get(STATUS_EVENT) \
        if isinstance(claims.get("events"), dict) else None
    return isinstance(event, dict) and \
        bool(re.fullmatch(r"\d{12}", str(event.get("national_id", "")))) and \
        event.get("status") in STATUSES


# (claim, check(claims, conf, now) -> bool, RFC 8935 error, description)
CLAIM_CHECKS = (
    ("iss", lambda c, conf, now: c.get("iss") == conf["REGISTER_URL"], "invalid_issuer",
     "iss is not the population register"),
    ("aud", _audience, "invalid_audience", "aud is not this identity provider"),
    ("iat", lambda c, conf, now: now - conf["REGISTER_EVENT_MAX_AGE"] - conf["JWT_LEEWAY"]
     <= _number(c, "iat") <= now + conf["JWT_LEEWAY"], "invalid_request",
     "iat is too old or in the future"),
    ("exp", lambda c, conf, now: "exp" not in c or _number(c, "exp") + conf["JWT_LEEWAY"] >= now,
     "invalid_request", "the SET has expired"),
    ("jti", lambda c, conf, now: isinstance(c.get("jti"), str) and 0 < len(c["jti"]) <= 200,
     "invalid_request", "jti is missing"),
    ("events", _events, "invalid_request", "no valid register status event"),
)


def verify_set(token: str, now: float | None = None) -> dict:
    """Verify a SET from the register; returns its claims or raises `SetRejected`."""
    conf = current_app.config
    now = time.time() if now is None else now
    header = _header(token)
    key = _find_key(header["kid"])
    if key is None:
        raise SetRejected("invalid_key", "the signing key is not one of the register's")
    try:
        claims = jwt.decode(token, key, algorithms=[header["alg"]]).claims
    except (JoseError, ValueError, TypeError, RecursionError) as exc:
        raise SetRejected("authentication_failed", "the signature does not verify") from exc
    for _name, check, err, description in CLAIM_CHECKS:
        if not check(claims, conf, now):
            raise SetRejected(err, description)
    return claims


def _jti_key(claims: dict) -> str:
    return "ekyc:set-jti:" + hashlib.sha256(
        f"{claims['iss']}\x1f{claims['jti']}".encode()).hexdigest()


def claim_jti(claims: dict) -> bool:
    """Single use (Redis SET NX): True the first time this SET's jti is seen.

    Kept a day: far longer than REGISTER_EVENT_MAX_AGE, and the register re-signs a retried
    SET with the same jti and a fresh iat, so a late retry is still recognised.
    """
    return store.once(_jti_key(claims), 24 * 3600)


def release_jti(claims: dict) -> None:
    """Forget the jti when acting on it failed, so that the register's retry is applied."""
    store.kv().delete(_jti_key(claims))


# -- actions -------------------------------------------------------------------------------------

def lock_account(account: Account, status: str, jti: str) -> int:
    """Lock the account, end its SSO sessions (back-channel logout), revoke refresh tokens.

    Returns how many sessions ended. Idempotent: locking a locked account ends what is left.
    """
    from idp.oauth2.logout import logout_session
    from idp.oauth2.tokens import revoke_grant

    account.status = ACCOUNT_LOCKED
    account.status_reason = status
    db.session.commit()
    ended = 0
    for sess in sessions.for_account(account.id):
        logout_session(sess)  # back-channel logout jobs to every portal of the session
        ended += 1
    grants = db.session.scalars(
        db.select(RefreshToken.grant_id).where(RefreshToken.account_id == account.id,
                                               RefreshToken.revoked_at.is_(None)).distinct())
    for grant_id in list(grants):
        revoke_grant(grant_id, reason="account_locked_register")
    audit.record("account_locked_register", account_id=account.id, commit=False,
                 status=status, sessions_ended=ended,
                 set_jti=hashlib.sha256(jti.encode()).hexdigest()[:16])
    db.session.commit()
    return ended


def apply_status(national_id: str, status: str, jti: str) -> str:
    """Act on one status change; returns what was done (for tests and the audit)."""
    account = issuance.find_account(national_id)
    if account is None:
        return "no_account"
    if status in LOCKING_STATUSES:
        lock_account(account, status, jti)
        return "locked"
    audit.record("register_status_alive", account_id=account.id, status=status,
                 account_status=account.status)
    return "noted"


@bp.post("/ekyc/register-events")
def receive():
    """RFC 8935 push endpoint for the register's status SETs (CSRF-exempt: signed body)."""
    try:
        if request.mimetype != CONTENT_TYPE:
            raise SetRejected("invalid_request", f"Content-Type must be {CONTENT_TYPE}")
        if (request.content_length or 0) > MAX_BODY:
            raise SetRejected("invalid_request", "the SET is too large")
        token = request.get_data(cache=False, as_text=True)[:MAX_BODY + 1].strip()
        if len(token) > MAX_BODY:
            raise SetRejected("invalid_request", "the SET is too large")
        claims = verify_set(token)
    except SetRejected as exc:
        audit.record("register_event.refused", err=exc.err, reason=exc.description)
        # RFC 8935 2.3 names the members err/description; the project's JSON errors (and the
        # register's) use error/error_description: both are sent.
        response = jsonify({"err": exc.err, "description": exc.description,
                            "error": exc.err, "error_description": exc.description})
        response.status_code = 400
        return response
    event = claims["events"][STATUS_EVENT]
    if not claim_jti(claims):
        # A replay, or the register retrying a delivery whose answer it lost: nothing is done
        # again, and 202 stops the register's outbox from retrying forever.
        audit.record("register_event.duplicate")
        return "", 202
    try:
        outcome = apply_status(event["national_id"], event["status"], claims["jti"])
    except Exception:
        db.session.rollback()
        release_jti(claims)
        raise
    log.info("register status event applied: %s", outcome)
    return "", 202
