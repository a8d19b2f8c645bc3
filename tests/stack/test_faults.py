"""Faults under load against the real stack (scripts/stack.sh, see conftest.py).

One steady mixed load (bench.traffic: password logins, SSO hops, refreshes, userinfo,
onboardings) runs through the whole module while each fault is applied in turn:

- kill -9 an IdP gunicorn worker; kill -9 the eKYC worker that holds a case's lease;
- restart Redis; restart PostgreSQL (each down for a couple of seconds);
- the register stub down until a case waits for it, then back;
- the same citizen onboarded twice at the same time.

For each fault: no HTTP 5xx other than 503 (a connection error while a process dies is counted,
not failed), requests succeed again within RECOVER_BOUND without anyone's help, and every case
in flight or submitted meanwhile ends approved, rejected or in review within SETTLE_BOUND. At
the end, over the whole run: no case lost or stuck, at most one account and one approved case
per ID number, no account without an approved case, and every approved case has every check
of the policy recorded as passed (or skipped by the development face-check setting), the
register's two checks passed. What each fault cost goes to the terminal summary (conftest.py).
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ekyc import policy

RATES = {"password_login": 1.0, "sso_hop": 3.0, "refresh": 3.0, "userinfo": 6.0,
         "onboarding": 0.2}
CITIZENS, CARDS = 60, 8
QUIET = 4.0             # seconds without a failed operation: recovered
RECOVER_BOUND = 45.0    # seconds from a fault until requests succeed again
SETTLE_BOUND = 90.0     # seconds from a fault until its cases are decided or in review
DONE = ("approved", "rejected", "needs_review")
IN_FLIGHT = ("submitted", "processing", "waiting_register")
FINAL_OUTCOMES = ("pass", "fail", "review", "skipped")  # ekyc.models.FINAL_OUTCOMES


def _kind(event) -> str:
    if event.status is not None:
        return str(event.status)
    return (event.error or "no answer").split(":")[0][:40]


class LoadRun:
    """The load and what the tests learn from it."""

    def __init__(self, stack, traffic, target, spares):
        self.stack, self.traffic, self.target = stack, traffic, target
        self.spares = spares  # cards of citizens the load never onboards
        self.extra: list[str] = []   # cases the tests submitted themselves
        self.first_fault: float | None = None
        self.report = None
        self._turn = 0

    def stop(self):
        if self.report is None:
            self.report = self.traffic.stop()
        return self.report

    def snapshot(self):
        return self.report or self.traffic.snapshot()

    def case_ids(self) -> set[str]:
        return {case_id for case_id, _pid in self.snapshot().cases} | set(self.extra)

    def states(self, ids) -> dict[str, str]:
        ids = list(ids)
        if not ids:
            return {}
        rows = self.stack.query("SELECT id, state FROM ekyc_cases WHERE id = ANY(%s)", (ids,))
        return dict(rows)

    def in_flight(self, before: dt.datetime | None = None) -> set[str]:
        sql = "SELECT id FROM ekyc_cases WHERE state = ANY(%s)"
        params: tuple = (list(IN_FLIGHT),)
        if before is not None:
            sql += " AND submitted_at < %s"
            params += (before,)
        return {row[0] for row in self.stack.query(sql, params)}

    def submit(self, card=None, address: str | None = None) -> str:
        """One onboarding through the public API, like the load's, kept in `extra`."""
        from ekyc.review.demo import send_onboarding

        self._turn += 1
        turn = self._turn
        if card is None:
            card = self.target.cards[turn % len(self.target.cards)]
        _pid, front, back, frames = card
        with requests.Session() as http:
            http.headers["X-Forwarded-For"] = address or f"10.250.{turn // 250}." \
                                                         f"{turn % 250 + 1}"
            case_id, _token = send_onboarding(http, self.stack.issuer, front, back, frames)
        self.extra.append(case_id)
        return case_id

    def submit_in_background(self, count: int, card=None) -> threading.Thread:
        def run():
            for _ in range(count):
                try:
                    self.submit(card)
                except requests.RequestException:
                    pass  # counted by the load's own onboardings; the DB check sees the rest

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    # -- measuring one fault ---------------------------------------------------------------------
    def wait_recovered(self, t_fault: float, name: str) -> tuple[list, float]:
        """Events overlapping the fault until QUIET seconds pass without a failure; returns
        (those events, seconds from the fault to the end of the last failed one)."""
        deadline = t_fault + RECOVER_BOUND
        while True:
            window = [e for e in self.snapshot().events if e.t + e.latency >= t_fault]
            failed = [e for e in window if not e.ok]
            last_end = max((e.t + e.latency for e in failed), default=t_fault)
            ok_after = [e for e in window if e.ok and e.t >= last_end]
            now = time.monotonic()
            if now - last_end >= QUIET and len(ok_after) >= 5:
                return window, max(0.0, last_end - t_fault)
            if now > deadline:
                kinds = collections.Counter(f"{e.op}:{_kind(e)}" for e in failed)
                pytest.fail(f"{name}: requests still failing {RECOVER_BOUND:.0f} s after the "
                            f"fault ({dict(kinds)})\n{self.stack.logs_tail()}", pytrace=False)
            time.sleep(0.5)

    def wait_settled(self, ids: set[str], t_fault: float, name: str) -> tuple[float, dict]:
        """Seconds from the fault until every case in `ids` is decided or in review."""
        deadline = t_fault + SETTLE_BOUND
        while True:
            states = self.states(ids)
            lost = ids - set(states)
            assert not lost, f"{name}: cases submitted but not in the database: {lost}"
            pending = {i: s for i, s in states.items() if s not in DONE}
            if not pending:
                return max(0.0, time.monotonic() - t_fault), dict(
                    collections.Counter(states.values()))
            if time.monotonic() > deadline:
                detail = self.stack.query(
                    "SELECT id, state, runs, attempts, lease_owner, lease_expires_at, "
                    "next_attempt_at FROM ekyc_cases WHERE id = ANY(%s)", (list(pending),))
                pytest.fail(f"{name}: cases not decided {SETTLE_BOUND:.0f} s after the fault: "
                            f"{detail}\n{self.stack.logs_tail()}", pytrace=False)
            time.sleep(1.0)

    def measure(self, name: str, t_fault: float, cases_before: set[str], in_flight: set[str],
                report: list, **extra) -> dict:
        if self.first_fault is None:
            self.first_fault = t_fault
        window, recover_s = self.wait_recovered(t_fault, name)
        failed = [e for e in window if not e.ok]
        server_errors = [e for e in window if e.status is not None and e.status >= 500
                         and e.status != 503]
        assert not server_errors, (
            f"{name}: HTTP 5xx other than 503: "
            f"{[(e.op, e.status, e.error) for e in server_errors[:10]]}\n"
            f"{self.stack.logs_tail()}")
        # Cases the fault could touch: in flight when it struck, submitted since, and any
        # submitted before now that is still in flight (a submit whose answer was lost).
        now_utc = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        known = self.case_ids()
        unknown = self.in_flight(before=now_utc) - known
        cases = in_flight | (known - cases_before) | unknown
        settle_s, outcomes = self.wait_settled(cases, t_fault, name)
        entry = {"fault": name, "ops": len(window), "failed": len(failed),
                 "failed_by_kind": dict(collections.Counter(_kind(e) for e in failed)),
                 "failed_by_op": dict(collections.Counter(e.op for e in failed)),
                 "recover_s": round(recover_s, 1), "cases_affected": len(cases),
                 "cases_settle_s": round(settle_s, 1) if cases else None,
                 "case_outcomes": outcomes, **extra}
        report.append(entry)
        return entry


@pytest.fixture(scope="module")
def load(stack):
    from bench.traffic import Traffic, setup_target

    target = setup_target(stack.issuer, env=stack.app_env(), citizens=CITIZENS,
                          cards=CARDS + 2)
    spares = target.cards[CARDS:]  # citizens the load never onboards (register, duplicates)
    del target.cards[CARDS:]
    traffic = Traffic(target, rates=RATES, workers=16, seed=7)
    run = LoadRun(stack, traffic.start(), target, spares)
    try:
        yield run
    finally:
        run.stop()


def _before(run: LoadRun) -> tuple[float, set[str], set[str]]:
    return time.monotonic(), run.case_ids(), run.in_flight()


def test_steady_load_has_no_errors(load):
    time.sleep(8)
    events = load.snapshot().events
    assert len(events) > 30, "the load generator did not get going"
    failed = [(e.op, e.status, e.error) for e in events if not e.ok]
    assert not failed, f"errors before any fault: {failed[:10]}\n{load.stack.logs_tail()}"


def test_kill_idp_worker(stack, load, fault_report):
    t_fault, before, flying = _before(load)
    stack.fault("kill-idp-worker")
    load.measure("kill -9 IdP worker", t_fault, before, flying, fault_report)


def test_kill_ekyc_worker_while_it_processes_a_case(stack, load, fault_report):
    feeder = load.submit_in_background(2)  # so that a case is being processed soon
    deadline = time.monotonic() + 60
    victim = None
    while victim is None and time.monotonic() < deadline:
        rows = stack.query("SELECT id, lease_owner FROM ekyc_cases WHERE state = 'processing' "
                           "AND lease_owner IS NOT NULL")
        for case_id, owner in rows:
            pid = owner.split(":")[1]
            for n in range(1, int(stack.env["STACK_EKYC_WORKERS"]) + 1):
                child = stack.dir / "run" / f"ekyc-worker-{n}.child"
                if child.exists() and child.read_text().strip() == pid:
                    victim = (case_id, n)
        time.sleep(0.05)
    assert victim, f"no case was being processed within 60 s\n{stack.logs_tail()}"
    case_id, worker = victim
    t_fault, before, flying = _before(load)
    stack.fault("kill-ekyc-worker", str(worker))
    state_after = load.states([case_id])[case_id]
    mid_case = state_after == "processing"
    entry = load.measure("kill -9 eKYC worker", t_fault, before, flying | {case_id},
                         fault_report, note="killed mid-case" if mid_case
                         else "the case had just finished")
    feeder.join(60)
    runs = stack.query("SELECT runs FROM ekyc_cases WHERE id = %s", (case_id,))[0][0]
    if mid_case:  # resumed by another run once the lease expired
        assert runs >= 2 or load.states([case_id])[case_id] in DONE, runs
        assert entry["cases_settle_s"] <= SETTLE_BOUND


@pytest.mark.parametrize(("drill", "name"), [("restart-redis", "restart Redis (2 s down)"),
                                             ("restart-postgres", "restart PostgreSQL (2 s down)")])
def test_restart_a_backend(stack, load, fault_report, drill, name):
    t_fault, before, flying = _before(load)
    stack.fault(drill, "2")
    load.measure(name, t_fault, before, flying, fault_report)
    ready = requests.get(stack.issuer + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text


def test_register_down_and_back(stack, load, fault_report):
    t_fault, before, flying = _before(load)
    stack.fault("register-down")
    # A citizen who can be approved, once the register answers.
    fresh_case = load.submit(load.spares[1])
    deadline = time.monotonic() + 60
    waited: set[str] = set()
    while fresh_case not in waited and time.monotonic() < deadline:
        waited = {row[0] for row in stack.query(
            "SELECT id FROM ekyc_cases WHERE state = 'waiting_register'")}
        time.sleep(0.5)
    assert fresh_case in waited, \
        f"the case did not wait for the register within 60 s\n{stack.logs_tail()}"
    time.sleep(max(0.0, t_fault + 8 - time.monotonic()))  # down for at least 8 s
    down_s = time.monotonic() - t_fault
    stack.fault("register-up")
    entry = load.measure("register stub down, then up", t_fault, before, flying | waited,
                         fault_report, note=f"down {down_s:.0f} s")
    assert entry["cases_affected"] >= len(waited)
    # The cases that waited were asked again: the check the outage interrupted (whichever one
    # was asking the register: the lookup, or a later one) has its register_unavailable
    # (pending) result followed by a final one. The fresh citizen's case is approved.
    for case_id in waited:
        rows = stack.query("SELECT name, outcome FROM ekyc_case_checks WHERE case_id = %s "
                           "ORDER BY id", (case_id,))
        interrupted = {n for n, o in rows if o == "pending"}
        assert interrupted, rows
        for name in interrupted:
            last = [o for n, o in rows if n == name][-1]
            assert last in FINAL_OUTCOMES, (name, rows)
    assert load.states([fresh_case])[fresh_case] == "approved", \
        stack.query("SELECT name, outcome, reason_code FROM ekyc_case_checks WHERE "
                    "case_id = %s ORDER BY id", (fresh_case,))


def test_same_citizen_onboarded_twice_at_once(stack, load, fault_report):
    card = load.spares[0]
    national_id = card[0]
    gate = threading.Barrier(2)

    def onboard(n: int) -> str:
        gate.wait(10)
        return load.submit(card, address=f"10.251.0.{n + 1}")

    t_fault, before, flying = _before(load)
    with ThreadPoolExecutor(2) as pool:
        ids = set(pool.map(onboard, range(2)))
    assert len(ids) == 2
    entry = load.measure("same citizen onboarded twice at once", t_fault, before,
                         flying | ids, fault_report)
    states = load.states(ids)
    assert sorted(states.values()).count("approved") <= 1, states
    hashes = {row[0] for row in stack.query(
        "SELECT pid_hash FROM ekyc_cases WHERE id = ANY(%s)", (list(ids),))}
    assert len(hashes) == 1, f"the two cases read different ID numbers: {hashes}"
    accounts = stack.query("SELECT id, onboarded_case_id FROM accounts WHERE pid_hash = %s",
                           (hashes.pop(),))
    assert len(accounts) <= 1, f"two accounts for {national_id}: {accounts}"
    if "approved" in states.values():
        approved = next(i for i, s in states.items() if s == "approved")
        assert accounts and accounts[0][1] == approved
        other = next(i for i in ids if i != approved)
        assert states[other] in ("rejected", "needs_review"), states
    assert entry["failed_by_kind"].get("500") is None


def test_nothing_lost_no_duplicate_no_blind_approval(stack, load, fault_report):
    """Over the whole run, after the load stops and the last cases settle."""
    t_stop = time.monotonic()
    report = load.stop()
    events = report.events
    server_errors = [(e.op, e.status, e.error) for e in events
                     if e.status is not None and e.status >= 500 and e.status != 503]
    assert not server_errors, f"HTTP 5xx other than 503: {server_errors[:10]}"
    if load.first_fault is not None:
        steady = [e for e in events if e.t + e.latency < load.first_fault and not e.ok]
        assert not steady, f"errors before the first fault: {steady[:5]}"

    # No case lost or stuck: every submitted case exists and ends decided or in review, and
    # nothing at all is left in flight (a submit whose answer was lost included).
    ids = load.case_ids() | load.in_flight()
    settle_s, outcomes = load.wait_settled(ids, t_stop, "end of the run")
    assert not load.in_flight(), "cases still in flight after the load stopped"
    onboardings = [e for e in events if e.op == "onboarding"]
    assert len(report.cases) == sum(e.ok for e in onboardings)

    # At most one account, and one approved case, per ID number.
    twice = stack.query("SELECT pid_hash, count(*) FROM accounts WHERE pid_hash IS NOT NULL "
                        "GROUP BY pid_hash HAVING count(*) > 1")
    assert not twice, f"ID numbers with more than one account: {len(twice)}"
    twice = stack.query("SELECT pid_hash, count(*) FROM ekyc_cases WHERE state = 'approved' "
                        "GROUP BY pid_hash HAVING count(*) > 1")
    assert not twice, f"ID numbers approved more than once: {len(twice)}"
    orphans = stack.query("SELECT a.id FROM accounts a JOIN ekyc_cases c ON "
                          "c.id = a.onboarded_case_id WHERE c.state <> 'approved'")
    assert not orphans, f"accounts issued by cases that are not approved: {orphans}"
    approved = [row[0] for row in stack.query(
        "SELECT id FROM ekyc_cases WHERE state = 'approved'")]
    issued = {row[0] for row in stack.query(
        "SELECT onboarded_case_id FROM accounts WHERE onboarded_case_id = ANY(%s)",
        (approved,))}
    assert issued == set(approved), "approved cases without their account"

    # No approval without checks: the latest final result of every check (since the last
    # recapture, as ekyc.pipeline.final_results reads them) passed; the register's passed.
    results: dict[str, dict[str, str]] = collections.defaultdict(dict)
    for case_id, name, outcome in stack.query(
            "SELECT case_id, name, outcome FROM ekyc_case_checks WHERE case_id = ANY(%s) "
            "ORDER BY id", (approved,)):
        if name == "recapture":
            results[case_id] = {}
        elif outcome in FINAL_OUTCOMES:
            results[case_id][name] = outcome
    for case_id in approved:
        got = results[case_id]
        missing = [n for n in policy.CHECK_NAMES if n not in got]
        assert not missing, f"approved case {case_id} without checks {missing}"
        bad = {n: o for n, o in got.items() if n in policy.CHECK_NAMES
               and o not in ("pass", "skipped")}
        assert not bad, f"approved case {case_id} with checks {bad}"
        for name in policy.REGISTER_CHECKS:
            assert got[name] == "pass", f"approved case {case_id}: {name} is {got[name]}"
    assert approved, "no case was approved: the run proves nothing about approvals"

    ok = [e for e in events if e.ok]
    fault_report.append({
        "fault": "whole run", "ops": len(events), "failed": len(events) - len(ok),
        "failed_by_kind": dict(collections.Counter(_kind(e) for e in events if not e.ok)),
        "recover_s": None, "cases_affected": len(ids),
        "cases_settle_s": round(settle_s, 1), "case_outcomes": outcomes,
        "duration_s": round(report.stopped - report.started, 1),
        "summary": report.summary()})
