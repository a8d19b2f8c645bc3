"""Append-only, hash-chained audit log of security events, in the database (never in plain logs).

Callers pass ids, not personal data: no ID numbers, passwords, tokens or codes.

Every entry carries its place in the chain (`seq`), the hash of the entry before it
(`prev_hash`) and its own hash (`entry_hash`: SHA-256 over a canonical JSON of every stored
field), so changing, deleting or inserting a row anywhere breaks the chain from there on;
`flask audit verify` (`verify_chain`) recomputes it and names the first broken entry.
Appending first updates the single `audit_chain_head` row, which takes the database's write
lock on that row (PostgreSQL) or the database (SQLite) until the caller's transaction ends:
appends are serialised and the chain never forks, even across processes. In PostgreSQL a
trigger also refuses UPDATE and DELETE on `audit_events` (migration 925a266315bd).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from flask import has_request_context, request

from . import observability
from .extensions import db
from .models import AuditChainHead, AuditEvent, utcnow

log = logging.getLogger("idp.audit")

HASHED_FIELDS = ("seq", "prev_hash", "at", "event", "account_id", "client_id", "ip",
                 "user_agent", "actor", "detail")


def _at(value) -> str:
    if isinstance(value, str):  # a raw SQLite value
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") if value else ""


def entry_hash(entry) -> str:
    """SHA-256 (hex) of an entry's canonical form; `entry` is a mapping or an AuditEvent."""
    get = entry.get if isinstance(entry, dict) else lambda k: getattr(entry, k)
    canonical = {k: get(k) for k in HASHED_FIELDS}
    canonical["at"] = _at(canonical["at"])
    canonical["detail"] = canonical["detail"] or {}
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _head() -> tuple[int, str]:
    """Lock the chain head (creating it on first use) and return (seq, hash) of the last entry."""
    table = AuditChainHead.__table__
    bump = db.update(AuditChainHead).where(AuditChainHead.id == 1) \
        .values(seq=AuditChainHead.seq + 1)
    if db.session.execute(bump.execution_options(synchronize_session=False)).rowcount != 1:
        dialect = db.session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        db.session.execute(insert(table).values(id=1, seq=0, hash="")
                           .on_conflict_do_nothing(index_elements=["id"]))
        db.session.execute(bump.execution_options(synchronize_session=False))
    seq, last = db.session.execute(db.select(table.c.seq, table.c.hash)
                                   .where(table.c.id == 1)).one()
    return int(seq), last


def record(event: str, *, account_id: str | None = None, client_id: str | None = None,
           actor: str | None = None, commit: bool = True, **detail) -> AuditEvent:
    ip = ua = None
    if has_request_context():
        ip = request.remote_addr
        # printable only: a NUL (which PostgreSQL refuses in text) or control characters in a
        # client-chosen header must neither break the audit nor forge log lines
        ua = "".join(ch for ch in (request.user_agent.string or "")[:200] if ch.isprintable())
    seq, prev = _head()
    entry = AuditEvent(seq=seq, prev_hash=prev, at=utcnow(), event=event, account_id=account_id,
                       client_id=client_id, ip=ip, user_agent=ua,
                       actor=actor[:64] if actor else None,
                       detail=json.loads(json.dumps(detail, default=str)))
    entry.hash = entry_hash(entry)
    db.session.execute(db.update(AuditChainHead).where(AuditChainHead.id == 1)
                       .values(hash=entry.hash).execution_options(synchronize_session=False))
    db.session.add(entry)
    if commit:
        db.session.commit()
    observability.count_audit_event(event)
    log.info("audit event=%s client=%s", event, client_id)
    return entry


def verify_chain(batch: int = 5000) -> tuple[int, AuditEvent | None, str | None]:
    """Recompute the chain in `seq` order: (entries checked, first broken entry or None, why).

    Broken: an entry without a place in the chain, a gap in `seq` (a deleted entry), a
    `prev_hash` that is not the previous entry's hash (an entry removed or inserted), a hash
    that does not match the entry's content (an entry changed), or a chain head that does not
    name the last entry (entries removed from the end, or appended behind the log's back).
    Reads in its own session, so the caller's objects stay as they were; the broken entry is
    returned detached."""
    from sqlalchemy.orm import Session

    with Session(db.engine) as reader:
        first = reader.scalar(db.select(AuditEvent).where(AuditEvent.seq.is_(None)).limit(1))
        if first is not None:
            reader.expunge(first)
            return 0, first, "not chained (no seq)"
        checked, prev, expected_seq, after = 0, "", 1, 0
        while True:
            rows = reader.scalars(db.select(AuditEvent).where(AuditEvent.seq > after)
                                  .order_by(AuditEvent.seq).limit(batch)).all()
            if not rows:
                break
            for row in rows:
                why = None
                if row.seq != expected_seq:
                    why = f"seq {row.seq} follows {expected_seq - 1}: entries missing"
                elif row.prev_hash != prev:
                    why = "prev_hash is not the previous entry's hash"
                elif row.hash != entry_hash(row):
                    why = "content does not match its hash: the entry was changed"
                if why:
                    reader.expunge(row)
                    return checked, row, why
                prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
            after = rows[-1].seq
            reader.expunge_all()
        head = reader.get(AuditChainHead, 1)
        if head is None:
            if checked:
                return checked, None, "the chain head is missing"
        elif head.seq > checked or (head.seq == checked and head.hash != prev):
            return checked, None, (f"the chain head says {head.seq} entries, found {checked}: "
                                   "the last entries were removed")
        elif head.seq < checked:
            return checked, None, (f"the chain head says {head.seq} entries, found {checked}: "
                                   "entries were added behind the log's back")
    return checked, None, None


def register_cli(app) -> None:
    import click

    @app.cli.group("audit")
    def audit_group():
        """The audit log."""

    @audit_group.command("verify")
    def verify_command():
        """Recompute the hash chain; exit 1 naming the first broken entry."""
        checked, broken, why = verify_chain()
        if why is None:
            click.echo(f"audit chain intact: {checked} entries")
            return
        where = f"entry seq={broken.seq} id={broken.id} ({broken.event}, {_at(broken.at)})" \
            if broken is not None else "end of the chain"
        click.echo(f"audit chain BROKEN at {where}: {why}; {checked} entries before it are "
                   "intact", err=True)
        raise SystemExit(1)
