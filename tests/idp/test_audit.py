"""The hash-chained audit log (`idp.audit`): appends link, `flask audit verify` names the first
broken entry after a change, a deletion or a forged insertion, PostgreSQL refuses plain
UPDATE/DELETE, and concurrent appends never fork the chain.

The tests of one chain run with AUDIT_CHAINS=1 (the `app` fixture below): the log behaves as it
did before it was split into chains. The tests after them run with several chains: threads
spread over chains, every chain verifies, a break names its chain, and entries written before
the split (chain 0, hashed without `chain`) still verify."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import threading
from collections import defaultdict

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from idp import audit, create_app
from idp.extensions import db
from idp.models import AuditChainHead, AuditEvent
from tests.conftest import ROOT, _dispose, base_config


@pytest.fixture
def app(make_app):
    """One chain, as before the log was split: AUDIT_CHAINS=1 must behave exactly as then."""
    return make_app(AUDIT_CHAINS=1)


@pytest.fixture
def chains_app(make_app):
    return make_app(AUDIT_CHAINS=16)


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


def _append_concurrently(app, threads: int, per_thread: int) -> None:
    """`threads` threads appending `per_thread` entries each at the same time; none fails."""
    errors = []

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


def test_concurrent_appends_never_fork_the_chain(app):
    before = len(_rows(app))
    threads, per_thread = 6, 15
    _append_concurrently(app, threads, per_thread)
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


# --- several chains ------------------------------------------------------------------------

def _by_chain(app) -> dict[int, list[AuditEvent]]:
    chains = defaultdict(list)
    for row in _rows(app):
        chains[row.chain].append(row)
    return {c: sorted(rows, key=lambda r: r.seq) for c, rows in chains.items()}


def _assert_linked(app, chains: dict[int, list[AuditEvent]]) -> None:
    with app.app_context():
        for chain, rows in chains.items():
            assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), chain
            assert rows[0].prev_hash == ""
            for prev, row in itertools.pairwise(rows):
                assert row.prev_hash == prev.hash
            for row in rows:
                assert row.hash == audit.entry_hash(row)
            head = db.session.get(AuditChainHead, audit.head_id(chain))
            assert (head.seq, head.hash) == (rows[-1].seq, rows[-1].hash)
        db.session.remove()


def test_the_setting_refuses_fewer_than_one_chain(make_app):
    from idp.settings import ConfigError

    with pytest.raises(ConfigError, match="AUDIT_CHAINS"):
        make_app(AUDIT_CHAINS=0)


def test_concurrent_threads_spread_over_chains_and_every_chain_verifies(chains_app):
    before = len(_rows(chains_app))
    threads, per_thread = 8, 12
    _append_concurrently(chains_app, threads, per_thread)
    chains = _by_chain(chains_app)
    assert sum(len(rows) for rows in chains.values()) == before + threads * per_thread
    assert len(chains) > 1 and all(0 <= c < 16 for c in chains)
    _assert_linked(chains_app, chains)
    for rows in chains.values():  # one thread's entries stay in order in one chain
        mine = defaultdict(list)
        for row in rows:
            if row.event == "test.event":
                mine[row.detail["n"] // 1000].append(row.detail["n"])
        assert all(ns == sorted(ns) for ns in mine.values())
    writers = {r.detail["n"] // 1000: r.chain for c in chains.values() for r in c
               if r.event == "test.event"}
    assert len(writers) == threads  # each thread wrote to exactly one chain...
    assert len(set(writers.values())) == threads  # ...its own: a process's threads never share
    assert sum(1 for r in _rows(chains_app) if r.event == "test.event"
               and r.chain != writers[r.detail["n"] // 1000]) == 0
    result = _verify(chains_app)
    assert result.exit_code == 0, result.output
    assert f"intact: {before + threads * per_thread} entries" in result.output


def _in_chains(app, monkeypatch, plan) -> None:
    """Append `count` entries to chain `chain` for each (chain, count) of `plan`, in order."""
    for chain, count in plan:
        monkeypatch.setattr(audit, "_chain", lambda chain=chain: chain)
        _append(app, count, start=chain * 100)
    monkeypatch.undo()


def _seq_in(app, chain: int, n: int) -> int:
    return next(r.seq for r in _rows(app) if r.chain == chain and r.event == "test.event"
                and r.detail["n"] == n)


@pytest.mark.parametrize("tamper, broken, why", [
    ("UPDATE audit_events SET detail = '{\"n\": 99}' WHERE chain = 3 AND seq = :seq", 0,
     "changed"),
    ("UPDATE audit_events SET chain = 5 WHERE chain = 3 AND seq = :seq", 1, "missing"),
    ("DELETE FROM audit_events WHERE chain = 3 AND seq = :seq", 1, "missing"),
])
def test_a_break_in_one_chain_names_that_chain(chains_app, monkeypatch, tamper, broken, why):
    _in_chains(chains_app, monkeypatch, [(1, 3), (3, 5), (7, 2), (3, 1)])
    seq = _seq_in(chains_app, 3, 301)
    _tamper(chains_app, tamper, seq=seq)
    result = _verify(chains_app)
    assert result.exit_code == 1
    assert f"chain=3 seq={seq + broken} " in result.output
    assert why in result.output and "(chain 3)" in result.output
    with chains_app.app_context():
        _checked, entry, reason = audit.verify_chain()
        assert (entry.chain, entry.seq) == (3, seq + broken) and reason.endswith("(chain 3)")
        db.session.remove()


def test_an_entry_moved_to_another_chain_does_not_verify_there(chains_app, monkeypatch):
    """`chain` is hashed (when not 0): an entry cannot be passed off as another chain's."""
    _in_chains(chains_app, monkeypatch, [(3, 2)])
    with chains_app.app_context():
        row = db.session.scalar(db.select(AuditEvent).filter_by(chain=3, seq=1))
        moved = {k: getattr(row, k) for k in (*audit.HASHED_FIELDS, "chain")}
        assert audit.entry_hash({**moved, "chain": 4}) != row.hash
        assert audit.entry_hash({**moved, "chain": 0}) != row.hash
        db.session.remove()


def test_the_deleted_last_entry_of_a_chain_is_detected_naming_it(chains_app, monkeypatch):
    _in_chains(chains_app, monkeypatch, [(3, 4), (1, 2)])
    last = max(r.seq for r in _rows(chains_app) if r.chain == 3)
    _tamper(chains_app, "DELETE FROM audit_events WHERE chain = 3 AND seq = :seq", seq=last)
    result = _verify(chains_app)
    assert result.exit_code == 1
    assert f"says {last} entries, found {last - 1}" in result.output
    assert "(chain 3)" in result.output


def test_a_wiped_chain_is_detected_by_its_head(chains_app, monkeypatch):
    _in_chains(chains_app, monkeypatch, [(3, 2), (1, 2)])
    _tamper(chains_app, "DELETE FROM audit_events WHERE chain = 3")
    result = _verify(chains_app)
    assert result.exit_code == 1 and "found 0" in result.output and "(chain 3)" in result.output


def test_chains_beyond_the_setting_are_still_verified(make_app, monkeypatch):
    """Lowering AUDIT_CHAINS leaves the chains written before: they are still verified."""
    app = make_app(AUDIT_CHAINS=16)
    _in_chains(app, monkeypatch, [(12, 3)])
    small = make_app(AUDIT_CHAINS=2)
    _append(small, 2)
    _tamper(small, "DELETE FROM audit_events WHERE chain = 12 AND seq = 2")
    result = _verify(small)
    assert result.exit_code == 1 and "chain=12 seq=3 " in result.output


def _old_hash(entry: dict) -> str:
    """entry_hash as it was before the log was split into chains (revision 925a266315bd)."""
    fields = ("seq", "prev_hash", "at", "event", "account_id", "client_id", "ip", "user_agent",
              "actor", "detail")
    canonical = {k: entry[k] for k in fields}
    canonical["at"] = canonical["at"].replace(tzinfo=None).isoformat(timespec="microseconds")
    canonical["detail"] = canonical["detail"] or {}
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def test_entries_of_chain_0_keep_their_old_hash(chains_app, monkeypatch):
    _in_chains(chains_app, monkeypatch, [(0, 3), (3, 1)])
    for row in _rows(chains_app):
        entry = {k: getattr(row, k) for k in audit.HASHED_FIELDS}
        assert (_old_hash(entry) == row.hash) == (row.chain == 0)


def test_entries_written_before_the_migration_still_verify(tmp_path, monkeypatch):
    """Upgrade a database holding a chain written by the previous revision: its entries become
    chain 0, verify as they are, and new appends in other chains verify alongside them."""
    from flask_migrate import upgrade

    app = create_app(base_config(DATABASE_URL=f"sqlite:///{tmp_path / 'old.db'}", REDIS_URL="",
                                 AUDIT_CHAINS=16))
    migrations = str(ROOT / "migrations")
    try:
        with app.app_context():
            upgrade(directory=migrations, revision="925a266315bd")
            prev, at = "", dt.datetime(2026, 11, 1, 8, 0, 0, 123456)
            for seq in range(1, 5):
                entry = {"seq": seq, "prev_hash": prev, "at": at + dt.timedelta(seconds=seq),
                         "event": "login.success", "account_id": f"acc-{seq}",
                         "client_id": "portal", "ip": "10.0.0.1", "user_agent": "UA",
                         "actor": "citizen", "detail": {"n": seq, "text": "Đinh"}}
                digest = _old_hash(entry)
                db.session.execute(text(
                    "INSERT INTO audit_events (seq, prev_hash, hash, at, event, account_id, "
                    "client_id, ip, user_agent, actor, detail) VALUES (:seq, :prev_hash, :hash, "
                    ":at, :event, :account_id, :client_id, :ip, :user_agent, :actor, :detail)"),
                    {**entry, "hash": digest, "detail": json.dumps(entry["detail"])})
                prev = digest
            db.session.execute(text("UPDATE audit_chain_head SET seq = 4, hash = :h "
                                    "WHERE id = 1"), {"h": prev})
            db.session.commit()
            upgrade(directory=migrations)
            assert audit.verify_chain() == (4, None, None)
            assert db.session.scalars(db.select(AuditEvent.chain).distinct()).all() == [0]
            for chain in (0, 5, 9):
                monkeypatch.setattr(audit, "_chain", lambda chain=chain: chain)
                audit.record("test.event", actor="tester", n=chain)
            assert audit.verify_chain() == (7, None, None)
            assert db.session.get(AuditChainHead, 1).seq == 5  # chain 0 goes on from the old one
            db.session.remove()
    finally:
        _dispose(app)
