"""Status-change notifications to the IdP: Security Event Tokens (RFC 8417) through an outbox.

A status change (death, card revocation, back to alive) and its notification are written in
the same transaction: the citizen row and an outbox row holding the event. Every attempt signs
the SET again with the same `jti` and a fresh `iat` (the IdP refuses SETs older than a few
minutes, and a retry may come an hour later); `changed_at` keeps the time of the change.

Delivery is a push (RFC 8935): POST with `Content-Type: application/secevent+jwt`, done when
the IdP answers 200 or 202; otherwise the row is retried with exponential back-off
(REGISTER_NOTIFY_BACKOFF_BASE doubling up to REGISTER_NOTIFY_BACKOFF_MAX, plus up to 10 %
jitter), forever. The receiver is idempotent by `jti`, so a duplicate delivery (two workers,
a crash after the POST) is harmless; rows are claimed with a conditional UPDATE so that two
workers rarely send the same one.

The SET: header `{alg: ES256, kid, typ: secevent+jwt}`, claims `{iss: REGISTER_BASE_URL,
aud: REGISTER_NOTIFY_AUDIENCE (the IdP issuer), iat, jti, events: {EVENT_STATUS: {national_id,
status, changed_at (ISO 8601 UTC, "2026-11-23T21:59:00Z")}}}`.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from datetime import timedelta

import requests
from flask import Flask, current_app

from register import keys
from register.models import CitizenRecord, OutboxMessage, db, utcnow

log = logging.getLogger(__name__)

EVENT_STATUS = "urn:dinhdanh:register:status"
SET_TYP = "secevent+jwt"
CONTENT_TYPE = "application/secevent+jwt"
STATUSES = ("alive", "deceased", "card_revoked")
BATCH = 50
_jitter = random.SystemRandom()


def make_set(jti: str, event: dict) -> str:
    """Sign a status SET with this jti and a fresh iat."""
    conf = current_app.config
    claims = {
        "iss": conf["REGISTER_BASE_URL"],
        "aud": conf["REGISTER_NOTIFY_AUDIENCE"],
        "iat": int(time.time()),
        "jti": jti,
        "events": {EVENT_STATUS: event},
    }
    return keys.sign(claims, SET_TYP)


def change_status(national_id: str, status: str) -> tuple[CitizenRecord, str | None] | None:
    """Set a citizen's status and queue its notification in one transaction.

    Returns (record, jti of the queued SET), jti None when the status was already that one;
    None when there is no such citizen.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    record = db.session.get(CitizenRecord, national_id)
    if record is None:
        return None
    if record.status == status:
        return record, None
    now = utcnow()
    record.status = status
    record.status_changed_at = now
    jti = secrets.token_urlsafe(18)
    event = {"national_id": national_id, "status": status,
             "changed_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    db.session.add(OutboxMessage(jti=jti, event=EVENT_STATUS, payload=event,
                                 token=make_set(jti, event), next_attempt_at=now))
    db.session.commit()
    worker = current_app.extensions.get("register_outbox")
    if worker is not None:
        worker.wake()
    return record, jti


def backoff_seconds(attempts: int, conf) -> float:
    """Wait after the `attempts`-th failed attempt (1, 2, ...): base * 2^(n-1), capped."""
    base = conf["REGISTER_NOTIFY_BACKOFF_BASE"]
    delay = min(base * 2 ** min(attempts - 1, 30), conf["REGISTER_NOTIFY_BACKOFF_MAX"])
    return delay * (1 + _jitter.random() * 0.1)


def _post(token: str, conf) -> str | None:
    """One delivery attempt; None when accepted, else a short reason (no token, no body)."""
    timeout = conf["REGISTER_NOTIFY_TIMEOUT"]
    try:
        with requests.post(conf["REGISTER_NOTIFY_URL"], data=token.encode(),
                           headers={"Content-Type": CONTENT_TYPE, "Accept": "application/json"},
                           timeout=(timeout, timeout), allow_redirects=False,
                           stream=True) as resp:
            if resp.status_code in (200, 202):
                return None
            return f"HTTP {resp.status_code}"
    except requests.RequestException as exc:
        return type(exc).__name__


def _claim(message: OutboxMessage, lease: float) -> bool:
    """Take the row for this attempt unless another worker just did (conditional UPDATE)."""
    result = db.session.execute(
        db.update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.delivered_at.is_(None),
               OutboxMessage.next_attempt_at == message.next_attempt_at)
        .values(next_attempt_at=utcnow() + timedelta(seconds=lease)))
    db.session.commit()
    return result.rowcount == 1


def deliver_due(limit: int = BATCH) -> dict:
    """Try every message that is due now; returns {"delivered", "failed", "pending"}."""
    conf = current_app.config
    now = utcnow()
    due = db.session.scalars(
        db.select(OutboxMessage)
        .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)).all()
    delivered = failed = 0
    for message in due:
        if not _claim(message, conf["REGISTER_NOTIFY_TIMEOUT"] * 2 + 5):
            continue
        message = db.session.get(OutboxMessage, message.id, populate_existing=True)
        message.token = make_set(message.jti, message.payload)  # fresh iat, same jti
        error = _post(message.token, conf)
        message.attempts += 1
        if error is None:
            message.delivered_at = utcnow()
            message.last_error = None
            delivered += 1
        else:
            message.last_error = error
            message.next_attempt_at = utcnow() + timedelta(
                seconds=backoff_seconds(message.attempts, conf))
            failed += 1
            log.warning("notification %s not delivered (attempt %d): %s",
                        message.jti, message.attempts, error)
        db.session.commit()
    pending = db.session.scalar(db.select(db.func.count(OutboxMessage.id))
                                .where(OutboxMessage.delivered_at.is_(None)))
    return {"delivered": delivered, "failed": failed, "pending": pending}


class OutboxWorker:
    """Background thread that delivers due messages every REGISTER_OUTBOX_INTERVAL seconds,
    and at once after `wake()` (a status change in this process)."""

    def __init__(self, app: Flask):
        self.app = app
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="register-outbox", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        self._wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        interval = self.app.config["REGISTER_OUTBOX_INTERVAL"]
        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    deliver_due()
                    db.session.remove()
            except Exception:  # keep the thread alive through a database hiccup
                log.exception("outbox delivery round failed")
            self._wake.wait(interval)
            self._wake.clear()
