"""Append-only audit log of security events, in the database (never in plain logs).

Callers pass ids, not personal data: no ID numbers, passwords, tokens or codes.
"""

from __future__ import annotations

import logging

from flask import has_request_context, request

from .extensions import db
from .models import AuditEvent

log = logging.getLogger("idp.audit")


def record(event: str, *, account_id: str | None = None, client_id: str | None = None,
           commit: bool = True, **detail) -> None:
    ip = ua = None
    if has_request_context():
        ip = request.remote_addr
        # printable only: a NUL (which PostgreSQL refuses in text) or control characters in a
        # client-chosen header must neither break the audit nor forge log lines
        ua = "".join(ch for ch in (request.user_agent.string or "")[:200] if ch.isprintable())
    db.session.add(AuditEvent(event=event, account_id=account_id, client_id=client_id,
                              ip=ip, user_agent=ua, detail=detail))
    if commit:
        db.session.commit()
    log.info("audit event=%s client=%s", event, client_id)
