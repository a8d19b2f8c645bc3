"""Append-only, hash-chained audit log of security events, in the database (never in plain logs).

Callers pass ids, not personal data: no ID numbers, passwords, tokens or codes.

The log is `AUDIT_CHAINS` independent hash chains. Every entry carries its chain (`chain`),
its place in that chain (`seq`), the hash of the chain's entry before it (`prev_hash`) and its
own hash (`entry_hash`: SHA-256 over a canonical JSON of every stored field), so changing,
deleting or inserting a row anywhere breaks its chain from there on; `flask audit verify`
(`verify_chain`) recomputes every chain and names the first broken entry and its chain.

Appending first updates the chain's `audit_chain_head` row (id = chain + 1), which takes the
database's write lock on that row (PostgreSQL) or the database (SQLite) until the caller's
transaction ends: appends to one chain are serialised and no chain ever forks, even across
processes, while appends to different chains proceed in parallel (one chain capped the whole
IdP at a few hundred appends per second, bench/README.md "The audit chain"). Which chain an
append goes to is fixed per thread (`_chain`): one thread's entries stay in order in one
chain, a transaction only ever locks one head row (so two appenders never wait on each other
in a cycle), the threads of a process take consecutive chains and processes start at random
ones, so concurrent appenders rarely share a chain.
In PostgreSQL a trigger also refuses UPDATE and DELETE on `audit_events` and any backward
move of a chain head (migration 925a266315bd).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import threading

from flask import current_app, has_request_context, request

from . import observability
from .extensions import db
from .models import AuditChainHead, AuditEvent, utcnow

log = logging.getLogger("idp.audit")

HASHED_FIELDS = ("seq", "prev_hash", "at", "event", "account_id", "client_id", "ip",
                 "user_agent", "actor", "detail")
# `chain` is hashed too, but only when it is not 0: entries of chain 0 (every entry written
# before the log was split into chains) keep the canonical form, and so the hash, they had.
CHAIN_FIELD = "chain"


def _at(value) -> str:
    if isinstance(value, str):  # a raw SQLite value
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") if value else ""


def entry_hash(entry) -> str:
    """SHA-256 (hex) of an entry's canonical form; `entry` is a mapping or an AuditEvent."""
    get = entry.get if isinstance(entry, dict) else lambda k, d=None: getattr(entry, k, d)
    canonical = {k: get(k) for k in HASHED_FIELDS}
    canonical["at"] = _at(canonical["at"])
    canonical["detail"] = canonical["detail"] or {}
    if chain := get(CHAIN_FIELD, 0):
        canonical[CHAIN_FIELD] = int(chain)
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def head_id(chain: int) -> int:
    """The `audit_chain_head` row of a chain (chain 0's is id 1, as before chains were split)."""
    return chain + 1


_slots = threading.local()  # this thread's (pid, slot)
_process: dict = {}  # "offset" (random per process) and "next" slot of this process
_slots_lock = threading.Lock()


def _after_fork() -> None:  # a forked child starts its own slots (and a lock no one holds)
    global _slots_lock
    _slots_lock = threading.Lock()
    _process.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _slot() -> int:
    """This thread's slot: the process's random offset plus the number of threads that took
    one before it in this process, fixed for the thread's life."""
    pid = os.getpid()
    mine = getattr(_slots, "slot", None)
    if mine is None or mine[0] != pid:
        with _slots_lock:
            if _process.get("pid") != pid:
                _process.update(pid=pid, offset=secrets.randbelow(1 << 30), next=0)
            mine = (pid, _process["offset"] + _process["next"])
            _process["next"] += 1
        _slots.slot = mine
    return mine[1]


def _chain() -> int:
    """The chain this thread appends to. Fixed per thread, so one thread's entries stay in
    order in one chain and a transaction locks one chain head only (no lock cycles). The
    threads of a process take consecutive chains from a random start, so up to AUDIT_CHAINS
    threads of one process never share a chain and other processes rarely do (if they do,
    they only wait for each other, as every append did when there was one chain)."""
    chains = current_app.config.get("AUDIT_CHAINS", 1)
    return _slot() % chains if chains > 1 else 0


def _head(chain: int) -> tuple[int, str]:
    """Lock the chain's head (creating it on first use) and return (seq, hash) of its last entry."""
    table = AuditChainHead.__table__
    row = head_id(chain)
    bump = db.update(AuditChainHead).where(AuditChainHead.id == row) \
        .values(seq=AuditChainHead.seq + 1)
    if db.session.execute(bump.execution_options(synchronize_session=False)).rowcount != 1:
        dialect = db.session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        db.session.execute(insert(table).values(id=row, seq=0, hash="")
                           .on_conflict_do_nothing(index_elements=["id"]))
        db.session.execute(bump.execution_options(synchronize_session=False))
    seq, last = db.session.execute(db.select(table.c.seq, table.c.hash)
                                   .where(table.c.id == row)).one()
    return int(seq), last


def record(event: str, *, account_id: str | None = None, client_id: str | None = None,
           actor: str | None = None, commit: bool = True, **detail) -> AuditEvent:
    ip = ua = None
    if has_request_context():
        ip = request.remote_addr
        # printable only: a NUL (which PostgreSQL refuses in text) or control characters in a
        # client-chosen header must neither break the audit nor forge log lines
        ua = "".join(ch for ch in (request.user_agent.string or "")[:200] if ch.isprintable())
    chain = _chain()
    seq, prev = _head(chain)
    entry = AuditEvent(chain=chain, seq=seq, prev_hash=prev, at=utcnow(), event=event,
                       account_id=account_id, client_id=client_id, ip=ip, user_agent=ua,
                       actor=actor[:64] if actor else None,
                       detail=json.loads(json.dumps(detail, default=str)))
    entry.hash = entry_hash(entry)
    db.session.execute(db.update(AuditChainHead).where(AuditChainHead.id == head_id(chain))
                       .values(hash=entry.hash).execution_options(synchronize_session=False))
    db.session.add(entry)
    if commit:
        db.session.commit()
    observability.count_audit_event(event)
    log.info("audit event=%s client=%s", event, client_id)
    return entry


def verify_chain(batch: int = 5000) -> tuple[int, AuditEvent | None, str | None]:
    """Recompute every chain, each in `seq` order: (entries checked, first broken entry or None,
    why). `why` ends with the chain it is about, "(chain 3)"; the entries checked are those of
    the chains verified before it plus that chain's entries before the break.

    Broken: an entry without a place in a chain, a gap in `seq` (a deleted entry), a
    `prev_hash` that is not the previous entry's hash (an entry removed or inserted), a hash
    that does not match the entry's content (an entry changed, or moved to another chain), or
    a chain head that does not name its chain's last entry (entries removed from the end, or
    appended behind the log's back). Every chain that has entries or a head row is verified,
    whatever `AUDIT_CHAINS` says now. Reads in its own session, so the caller's objects stay as
    they were; the broken entry is returned detached."""
    from sqlalchemy.orm import Session

    with Session(db.engine) as reader:
        first = reader.scalar(db.select(AuditEvent).where(AuditEvent.seq.is_(None)).limit(1))
        if first is not None:
            reader.expunge(first)
            return 0, first, f"not chained (no seq) (chain {first.chain})"
        heads = {row.id - 1: (row.seq, row.hash) for row in reader.scalars(
            db.select(AuditChainHead))}
        chains = sorted(set(heads) | set(reader.scalars(db.select(AuditEvent.chain).distinct())))
        checked = 0
        for chain in chains:
            count, broken, why = _verify_one(reader, chain, heads.get(chain), batch)
            checked += count
            if why:
                return checked, broken, f"{why} (chain {chain})"
    return checked, None, None


def _verify_one(reader, chain: int, head: tuple[int, str] | None, batch: int):
    """(entries checked, broken entry or None, why or None) for one chain and its head."""
    checked, prev, expected_seq, after = 0, "", 1, 0
    while True:
        rows = reader.scalars(db.select(AuditEvent)
                              .where(AuditEvent.chain == chain, AuditEvent.seq > after)
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
    if head is None:
        if checked:
            return checked, None, "the chain head is missing"
        return checked, None, None
    head_seq, head_hash = head
    if head_seq > checked or (head_seq == checked and head_hash != prev):
        return checked, None, (f"the chain head says {head_seq} entries, found {checked}: "
                               "the last entries were removed")
    if head_seq < checked:
        return checked, None, (f"the chain head says {head_seq} entries, found {checked}: "
                               "entries were added behind the log's back")
    return checked, None, None


def register_cli(app) -> None:
    import click

    @app.cli.group("audit")
    def audit_group():
        """The audit log."""

    @audit_group.command("verify")
    def verify_command():
        """Recompute every hash chain; exit 1 naming the first broken entry and its chain."""
        checked, broken, why = verify_chain()
        if why is None:
            click.echo(f"audit chain intact: {checked} entries")
            return
        where = (f"entry chain={broken.chain} seq={broken.seq} id={broken.id} "
                 f"({broken.event}, {_at(broken.at)})") \
            if broken is not None else "end of the chain"
        click.echo(f"audit chain BROKEN at {where}: {why}; {checked} entries before it are "
                   "intact", err=True)
        raise SystemExit(1)
