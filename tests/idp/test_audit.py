"""The hash-chained audit log (`idp.audit`): appends link, `flask audit verify` names the first
broken entry after a change, a deletion or a forged insertion, PostgreSQL refuses plain
UPDATE/DELETE, and concurrent appends never fork the chain."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from idp import audit
from idp.extensions import db
from idp.models import AuditChainHead, AuditEvent


def _append(app, count: int, start: int = 0) -> None:
    with app.app_context():
        for i in range(count):
            audit.record("test.event", actor="tester", n=start + i)
        db.session.remove()


def _rows(app) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.seq)).all()
        db.session.expunge_all()
        db.session.remove()
    return rows


def _tamper(app, sql: str, **params) -> None:
    """Run `sql` as someone with direct database access would (past the PostgreSQL trigger)."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL dinhdanh.audit_maintenance = 'on'"))
        db.session.execute(text(sql), params)
        db.session.commit()
        db.session.remove()


def _verify(app):
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def _seq_of(app, n: int) -> int:
    """The seq of the test entry with detail n (the seed may have written entries before)."""
    return next(r.seq for r in _rows(app) if r.event == "test.event" and r.detail["n"] == n)


def test_appends_link_each_entry_to_the_previous_one(app):
    _append(app, 5)
    rows = _rows(app)
    assert len(rows) >= 5
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == ""
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    for row in rows:
        assert row.hash == audit.entry_hash(row) and len(row.hash) == 64
    with app.app_context():
        head = db.session.get(AuditChainHead, 1)
        assert (head.seq, head.hash) == (rows[-1].seq, rows[-1].hash)
        db.session.remove()


def test_verify_says_intact(app):
    _append(app, 4)
    total = len(_rows(app))
    result = _verify(app)
    assert result.exit_code == 0, result.output
    assert f"intact: {total} entries" in result.output


@pytest.mark.parametrize("change", [
    "UPDATE audit_events SET detail = '{\"n\": 99}' WHERE seq = :seq",
    "UPDATE audit_events SET event = 'test.harmless' WHERE seq = :seq",
    "UPDATE audit_events SET actor = 'someone_else' WHERE seq = :seq",
])
def test_a_modified_entry_is_detected_and_named(app, change):
    _append(app, 5)
    seq = _seq_of(app, 2)
    _tamper(app, change, seq=seq)
    result = _verify(app)
    assert result.exit_code == 1
    assert f"seq={seq} " in result.output
    assert "changed" in result.output
    with app.app_context():
        checked, broken, _why = audit.verify_chain()
        assert broken.seq == seq and checked == seq - 1
        db.session.remove()


def test_a_modified_entry_with_a_recomputed_hash_breaks_the_next_link(app):
    _append(app, 5)
    seq = _seq_of(app, 2)
    with app.app_context():
        row = db.session.scalar(db.select(AuditEvent).filter_by(seq=seq))
        forged = {k: getattr(row, k) for k in audit.HASHED_FIELDS}
        forged["detail"] = {"n": 42}
        new_hash = audit.entry_hash(forged)
        db.session.remove()
    _tamper(app, "UPDATE audit_events SET detail = '{\"n\": 42}', hash = :h WHERE seq = :seq",
            h=new_hash, seq=seq)
    result = _verify(app)
    assert result.exit_code == 1
    assert f"seq={seq + 1} " in result.output and "prev_hash" in result.output


def test_a_deleted_entry_in_the_middle_is_detected(app):
    _append(app, 5)
    seq = _seq_of(app, 2)
    _tamper(app, "DELETE FROM audit_events WHERE seq = :seq", seq=seq)
    result = _verify(app)
    assert result.exit_code == 1
    assert f"seq={seq + 1} " in result.output and "missing" in result.output


def test_a_deleted_last_entry_is_detected(app):
    _append(app, 5)
    last = _rows(app)[-1].seq
    _tamper(app, "DELETE FROM audit_events WHERE seq = :seq", seq=last)
    result = _verify(app)
    assert result.exit_code == 1
    assert "BROKEN" in result.output and f"says {last} entries, found {last - 1}" in result.output


def test_a_forged_entry_appended_behind_the_chain_head_is_detected(app):
    """A forger who computes a valid hash but cannot move the chain head (or does not know
    to) is caught by the head check."""
    _append(app, 3)
    last = _rows(app)[-1]
    forged = {"seq": last.seq + 1, "prev_hash": last.hash, "at": last.at,
              "event": "ops.decision", "account_id": None, "client_id": None, "ip": None,
              "user_agent": None, "actor": "sup1", "detail": {"kind": "approve"}}
    _tamper(app, "INSERT INTO audit_events (seq, prev_hash, hash, actor, at, event, detail) "
                 "VALUES (:seq, :prev, :hash, 'sup1', :at, 'ops.decision', :detail)",
            seq=forged["seq"], prev=last.hash, hash=audit.entry_hash(forged), at=last.at,
            detail='{"kind": "approve"}')
    result = _verify(app)
    assert result.exit_code == 1
    assert f"says {last.seq} entries, found {last.seq + 1}" in result.output


def test_a_forged_entry_without_a_place_in_the_chain_is_detected(app):
    _append(app, 3)
    _tamper(app, "INSERT INTO audit_events (at, event, actor, detail) "
                 "VALUES (:at, 'ops.decision', 'sup1', '{}')", at=_rows(app)[-1].at)
    result = _verify(app)
    assert result.exit_code == 1
    assert "seq=None" in result.output and "not chained" in result.output


def test_a_forged_entry_with_a_wrong_hash_is_detected(app):
    _append(app, 3)
    last = _rows(app)[-1]
    _tamper(app, "INSERT INTO audit_events (seq, prev_hash, hash, at, event, actor, detail) "
                 "VALUES (:seq, :prev, :hash, :at, 'ops.decision', 'sup1', '{}')",
            seq=last.seq + 1, prev=last.hash, hash="0" * 64, at=last.at)
    result = _verify(app)
    assert result.exit_code == 1
    assert f"seq={last.seq + 1} " in result.output


@pytest.mark.parametrize("statement, refusal", [
    ("UPDATE audit_events SET detail = '{}' WHERE seq = 1", "append-only"),
    ("DELETE FROM audit_events WHERE seq = 1", "append-only"),
    ("TRUNCATE audit_events", "append-only"),
    ("DELETE FROM audit_chain_head", "only moves forward"),
    ("UPDATE audit_chain_head SET seq = 1", "only moves forward"),
    ("TRUNCATE audit_chain_head", "only moves forward"),
])
def test_postgresql_refuses_plain_update_and_delete(app, statement, refusal):
    _append(app, 2)
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            db.session.remove()
            pytest.skip("the append-only trigger is PostgreSQL's")
        with pytest.raises(DBAPIError, match=refusal):
            db.session.execute(text(statement))
            db.session.commit()
        db.session.rollback()
        db.session.remove()
    assert _verify(app).exit_code == 0


def test_concurrent_appends_never_fork_the_chain(app):
    before = len(_rows(app))
    threads, per_thread, errors = 6, 15, []

    def work(t):
        try:
            _append(app, per_thread, start=t * 1000)
        except Exception as exc:  # noqa: BLE001 (reported below: a failure fails the test)
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    rows = _rows(app)
    assert len(rows) == before + threads * per_thread
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    for prev, row in itertools.pairwise(rows):
        assert row.prev_hash == prev.hash
    assert len({r.prev_hash for r in rows}) == len(rows)  # no two entries share a parent
    result = _verify(app)
    assert result.exit_code == 0 and f"intact: {len(rows)} entries" in result.output


def test_a_wiped_log_is_detected(app):
    _append(app, 3)
    _tamper(app, "DELETE FROM audit_events")
    result = _verify(app)
    assert result.exit_code == 1 and "found 0" in result.output


def test_the_last_entries_removed_with_the_chain_head_are_detected(app):
    _append(app, 3)
    last = _rows(app)[-1]
    _tamper(app, "DELETE FROM audit_events WHERE seq = :seq", seq=last.seq)
    _tamper(app, "DELETE FROM audit_chain_head")
    result = _verify(app)
    assert result.exit_code == 1 and "the chain head is missing" in result.output


def test_verify_leaves_the_callers_objects_alone(app):
    _append(app, 2)
    with app.app_context():
        mine = db.session.scalar(db.select(AuditEvent).order_by(AuditEvent.seq.desc()))
        checked, broken, why = audit.verify_chain()
        assert (broken, why) == (None, None) and checked >= 2
        assert mine in db.session and mine.event == "test.event"
        db.session.remove()
