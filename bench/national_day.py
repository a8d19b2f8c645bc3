"""A national day against `make stack`: what each operation costs, a 10-minute mixed run, and the
capacity model for the country.

    make stack                                         # in one shell (TRUSTED_PROXY_HOPS=1)
    uv run python bench/national_day.py                # in another: cost phase + 10-min run
    uv run python bench/national_day.py --phases cost --cost-seconds 20
    uv run python bench/national_day.py --phases run --duration 120 --scale 0.5

Phase `cost`: each operation alone, closed loop (`--cost-workers` threads sending the next
request as soon as the previous one is answered) for `--cost-seconds`. From /proc it reads the
CPU time of the IdP (gunicorn master + workers), PostgreSQL, Redis and the eKYC workers, and from
pg_stat_database the commits, rows written and WAL bytes; divided by the operations done, that is
the cost of one operation, and 1 / (IdP CPU per op) its throughput per core. Onboarding also
waits for the eKYC workers to finish the cases and charges their CPU per case.

Phase `run`: the mixed profile (`RATES` x `--scale`, open-loop arrivals, bench/traffic.py) for
`--duration` seconds. Per operation: count, errors, p50/p95/p99; every 10 s the memory (PSS)
of each component; at the end the memory trend over the second half of the run and the
CPU each component used. Then it waits for every submitted case to be decided.

It writes bench/national-day.json (everything, raw) and bench/national-day.md (tables, the
capacity model). Nothing asserts: this measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.traffic import OPS, Report, Traffic, setup_target

# The national day profile, per second, at scale 1.0 on this 2-core machine (what it sustains
# next to PostgreSQL, Redis, the eKYC worker and this generator). The proportions follow the
# country's: few onboardings, many sign-ins, mostly through SSO and refresh.
RATES = {"password_login": 8.0, "sso_hop": 16.0, "refresh": 16.0, "userinfo": 32.0,
         "onboarding": 0.2}
# The country (issue 7) and Keycloak's published sizing (per vCPU), to compare with.
CITIZENS = 100_000_000
PEAK_LOGINS = 5_000
ONBOARDINGS_PER_DAY = 200_000
KEYCLOAK = {"password_login": 15.0, "client_credentials": 120.0, "refresh": 120.0}
CLK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the stack
def stack_env() -> dict:
    """The environment `scripts/stack.sh` gives its processes (same defaults, same overrides)."""
    stack = Path(os.environ.get("STACK_DIR", ROOT / "instance" / "stack"))
    pg, redis = os.environ.get("STACK_PG_PORT", "55440"), os.environ.get("STACK_REDIS_PORT",
                                                                         "56390")
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("IDP_PORT", "8000")
    return {"FLASK_APP": "wsgi", "IDP_ENV": "development", "ISSUER": f"http://{host}:{port}",
            "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{pg}/dinhdanh",
            "REDIS_URL": f"redis://127.0.0.1:{redis}/0", "INSTANCE_PATH": str(stack / "idp"),
            "STACK_DIR": str(stack), "STACK_PG_PORT": pg, "STACK_REDIS_PORT": redis}


def _children(pid: int) -> list[int]:
    out = []
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        for task in tasks:
            text = (task / "children").read_text().split()
            out.extend(int(p) for p in text)
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _pid_of(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def components(env: dict) -> dict[str, list[int]]:
    """Live pids of each part of the stack, found from its pid files."""
    run = Path(env["STACK_DIR"]) / "run"
    parts: dict[str, list[int]] = {}
    for name, files in {"idp": ["idp.pid"], "register": ["register.pid"],
                        "portals": ["portal-public-services.pid", "portal-social-insurance.pid"],
                        "redis": ["redis.pid"]}.items():
        pids = []
        for f in files:
            pid = _pid_of(run / f)
            if pid:
                pids.extend(_tree(pid))
        parts[name] = pids
    parts["ekyc_workers"] = [p for f in sorted(run.glob("ekyc-worker-*.pid"))
                             for p in _tree(_pid_of(f) or 0) if p]
    pg = _pid_of(Path(env["STACK_DIR"]) / "pg" / "postmaster.pid")
    parts["postgres"] = _tree(pg) if pg else []
    return parts


def _stat(pid: int) -> tuple[float, float] | None:
    """(CPU seconds of the process and its reaped children, proportional set size in MiB: the
    process's own memory plus its share of pages it shares, so that summing PostgreSQL's
    backends or gunicorn's forked workers does not count shared memory several times)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK  # utime stime cutime cstime
    pss = next((int(line.split()[1]) for line in rollup.splitlines()
                if line.startswith("Pss:")), 0) / 1024
    return cpu, pss


class Meter:
    """CPU seconds per component over an interval, counting each process once: a pid seen at
    the start counts from there, a pid that appears later counts from 0 (a new RQ work-horse or
    gunicorn worker), a pid that vanished counts up to its last sample (its time then also lands
    in its parent's cutime; horses live a few seconds, so this may count up to one sample
    interval of a horse twice)."""

    def __init__(self, env: dict):
        self.env = env
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.owner: dict[int, str] = {}
        self.sample(initial=True)

    def sample(self, initial: bool = False) -> dict[str, float]:
        rss: dict[str, float] = {}
        for name, pids in components(self.env).items():
            rss[name] = 0.0
            for pid in pids:
                stat = _stat(pid)
                if stat is None:
                    continue
                cpu, mib = stat
                rss[name] += mib
                self.owner[pid] = name
                if pid not in self.first:
                    self.first[pid] = cpu if initial else 0.0
                self.last[pid] = cpu
        return {k: round(v, 1) for k, v in rss.items()}

    def cpu(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, name in self.owner.items():
            out[name] = out.get(name, 0.0) + max(0.0, self.last[pid] - self.first[pid])
        return {k: round(v, 2) for k, v in out.items()}


def _busy_cpu() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def pg_counters(env: dict) -> dict:
    import psycopg

    url = env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted, "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint "
            "FROM pg_stat_database WHERE datname = current_database()").fetchone()
        audit = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_events").fetchone()[0]
    return {"commits": row[0], "rows_written": row[1], "wal_bytes": row[2], "audit_rows": audit}


def storage(env: dict) -> dict:
    """Bytes per row of the tables that grow with the population, estimated so that it holds at
    100 million rows: the mean stored row (`pg_column_size`, compressed/TOAST as stored) plus
    28 bytes of tuple header and line pointer plus 48 bytes per index entry (a 36-character key
    in a B-tree). The whole relation size of a small table is mostly empty pages."""
    import psycopg

    url = env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    out = {}
    with psycopg.connect(url, connect_timeout=5) as conn:
        for table in ("accounts", "ekyc_face_templates", "ekyc_cases", "ekyc_case_checks",
                      "ekyc_case_events", "audit_events", "refresh_tokens"):
            rows, mean = conn.execute(f"SELECT count(*), avg(pg_column_size(t.*)) "
                                      f"FROM {table} t").fetchone()
            indexes = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s",
                                   (table,)).fetchone()[0]
            out[table] = {"rows": rows, "mean_row_bytes": round(float(mean or 0)),
                          "indexes": indexes,
                          "bytes_per_row": round(float(mean) + 28 + 48 * indexes) if rows
                          else None}
    return out


def redis_memory(env: dict) -> int:
    import redis

    return int(redis.Redis.from_url(env["REDIS_URL"], socket_timeout=5).info("memory")
               ["used_memory"])


def cases_left(env: dict, ids: list[str]) -> int:
    import psycopg

    if not ids:
        return 0
    url = env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM ekyc_cases WHERE id = ANY(%s) AND state NOT IN "
                           "('approved', 'rejected', 'needs_review')", (ids,)).fetchone()
    return row[0]


def case_states(env: dict, ids: list[str]) -> dict:
    import psycopg

    if not ids:
        return {}
    url = env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT state, count(*) FROM ekyc_cases WHERE id = ANY(%s) "
                            "GROUP BY state", (ids,)).fetchall()
    return dict(rows)


def wait_cases(env: dict, ids: list[str], timeout: float) -> float:
    start = time.monotonic()
    while cases_left(env, ids) and time.monotonic() - start < timeout:
        time.sleep(1.0)
    return time.monotonic() - start


# --------------------------------------------------------------------------- cost phase
class ClosedLoop(Traffic):
    """The same ops, but `workers` threads each sending the next as soon as one is answered."""

    def closed(self, op: str, seconds: float, max_ops: int | None = None) -> Report:
        import concurrent.futures

        self.started = time.monotonic()
        deadline = self.started + seconds
        taken = iter(range(max_ops)) if max_ops else None

        def loop():
            while time.monotonic() < deadline and (taken is None or next(taken, None) is not None):
                self._slots.acquire()
                self._run_op(op, time.monotonic())

        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            for f in [pool.submit(loop) for _ in range(self.workers)]:
                f.result()
        self.stopped = time.monotonic()
        with self._lock:
            return Report(list(self._events), list(self._cases), self.started, self.stopped)


def warm_citizens(target, count: int) -> ClosedLoop:
    """A generator whose citizens are signed in, with tokens: what the SSO hop, refresh and
    userinfo need."""
    gen = ClosedLoop(target, rates={}, workers=min(8, count))
    for c in gen.citizens[:count]:
        gen._slots.acquire()
        gen._run_op("password_login", time.monotonic())
    return gen


def cost_phase(target, env: dict, args) -> dict:
    results = {}
    for op in args.cost_ops:
        gen = warm_citizens(target, len(target.citizens)) if op != "password_login" and \
            op != "onboarding" else ClosedLoop(target, rates={}, workers=args.cost_workers)
        gen._events.clear()
        gen.workers = 2 if op == "onboarding" else args.cost_workers
        gen._slots = threading.BoundedSemaphore(gen.workers)
        seconds = args.cost_seconds
        meter, pg0, me0, mem0 = Meter(env), pg_counters(env), _self_cpu(), redis_memory(env)
        busy0, t0 = _busy_cpu(), time.monotonic()
        report = gen.closed(op, seconds if op != "onboarding" else 600,
                            max_ops=len(target.cards) if op == "onboarding" else None)
        decided_in = None
        if op == "onboarding":
            decided_in = wait_cases(env, [c for c, _ in report.cases], 600)
        meter.sample()
        pg1, cpu, busy = pg_counters(env), meter.cpu(), _busy_cpu() - busy0
        done = [e for e in report.events if e.ok and e.op == op]
        n = max(1, len(done))
        wall = report.stopped - report.started
        row = {"ops": len(done), "errors": sum(1 for e in report.events if not e.ok),
               "seconds": round(wall, 1), "rate_per_s": round(len(done) / wall, 1),
               "p50_ms": report.summary()[op]["p50_ms"] if done else None,
               "p99_ms": report.summary()[op]["p99_ms"] if done else None,
               "cpu_ms_per_op": {k: round(v * 1000 / n, 2) for k, v in cpu.items() if v},
               "loadgen_cpu_ms_per_op": round((_self_cpu() - me0) * 1000 / n, 2),
               "pg_commits_per_op": round((pg1["commits"] - pg0["commits"]) / n, 2),
               "pg_rows_per_op": round((pg1["rows_written"] - pg0["rows_written"]) / n, 2),
               "wal_bytes_per_op": round((pg1["wal_bytes"] - pg0["wal_bytes"]) / n),
               "audit_rows_per_op": round((pg1["audit_rows"] - pg0["audit_rows"]) / n, 2),
               "redis_bytes_per_op": round((redis_memory(env) - mem0) / n),
               "other_cores": round(max(0.0, busy - sum(cpu.values()) - (_self_cpu() - me0))
                                    / (time.monotonic() - t0), 2),
               "sample_errors": [e.error for e in report.events if not e.ok][:3]}
        idp_ms = row["cpu_ms_per_op"].get("idp")
        row["per_core_per_s"] = round(1000 / idp_ms, 1) if idp_ms else None
        if op == "onboarding":
            row["cases"] = case_states(env, [c for c, _ in report.cases])
            row["all_decided_after_s"] = round(decided_in, 1)
            worker = row["cpu_ms_per_op"].get("ekyc_workers")
            row["worker_cases_per_core_per_s"] = round(1000 / worker, 3) if worker else None
        results[op] = row
        print(f"[cost] {op}: {json.dumps(row)}", flush=True)
    return results


# --------------------------------------------------------------------------- run phase
def run_phase(target, env: dict, args) -> dict:
    rates = {op: r * args.scale for op, r in RATES.items()}
    gen = Traffic(target, rates=rates, workers=args.workers).start()
    meter, pg0, me0, busy0 = Meter(env), pg_counters(env), _self_cpu(), _busy_cpu()
    series = []
    start = time.monotonic()
    while time.monotonic() - start < args.duration:
        time.sleep(min(10.0, max(0.0, args.duration - (time.monotonic() - start))))
        rss = meter.sample()
        snap = gen.snapshot()
        recent = [e for e in snap.events if e.t >= time.monotonic() - 10]
        series.append({"t": round(time.monotonic() - start), "pss_mib": rss,
                       "ops_10s": len(recent), "errors_10s": sum(not e.ok for e in recent)})
        print(f"[run] t={series[-1]['t']:>4}s ops/10s={len(recent)} errors={series[-1]['errors_10s']} "
              f"pss={json.dumps(rss)}", flush=True)
    report = gen.stop()
    meter.sample()
    cpu, pg1, me1, busy1 = meter.cpu(), pg_counters(env), _self_cpu(), _busy_cpu()
    ids = [c for c, _ in report.cases]
    decided_in = wait_cases(env, ids, args.decide_timeout)
    wall = report.stopped - report.started
    return {"rates_per_s": rates, "duration_s": round(wall, 1), "summary": report.summary(),
            "throughput_per_s": round(sum(e.ok for e in report.events) / wall, 1),
            "errors": sum(not e.ok for e in report.events),
            "error_samples": [e.error for e in report.events if not e.ok][:10],
            "memory": memory_trend(series), "series": series,
            "cpu_seconds": cpu, "cpu_cores": {k: round(v / wall, 2) for k, v in cpu.items()},
            "loadgen_cores": round((me1 - me0) / wall, 2),
            # busy minus the stack and this generator: other people's jobs on the machine
            "other_cores": round(max(0.0, (busy1 - busy0) - sum(cpu.values()) - (me1 - me0))
                                 / wall, 2),
            "pg": {k: pg1[k] - pg0[k] for k in pg0},
            "cases": {"submitted": len(ids), "states": case_states(env, ids),
                      "not_decided": cases_left(env, ids),
                      "all_decided_s_after_end": round(decided_in, 1)}}


def memory_trend(series: list[dict]) -> dict:
    """Per component: memory (PSS) at the first sample, the end and the peak, and the slope over the
    second half (least squares, MiB per minute): "no growth" is a slope near zero."""
    out = {}
    if not series:
        return out
    half = series[len(series) // 2:]
    for name in series[0]["pss_mib"]:
        values = [s["pss_mib"].get(name, 0.0) for s in series]
        xs = [s["t"] / 60 for s in half]
        ys = [s["pss_mib"].get(name, 0.0) for s in half]
        slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
        out[name] = {"first": values[0], "last": values[-1], "peak": max(values),
                     "slope_mib_per_min_2nd_half": round(slope, 2)}
    return out


# --------------------------------------------------------------------------- the model
def capacity_model(cost: dict, run: dict | None, tables: dict) -> dict:
    """Cores, memory and database writes for the country, from the measured costs."""
    def ms(op, part):
        return cost.get(op, {}).get("cpu_ms_per_op", {}).get(part)

    model = {}
    login = cost.get("password_login", {})
    hop = cost.get("sso_hop", {})
    if login and hop:
        # A sign-in at the peak: the cold login (argon2id + code exchange) for the first
        # portal; SSO hops for the others. Worst case: every sign-in is cold.
        idp_login = ms("password_login", "idp")
        idp_hop = ms("sso_hop", "idp")
        pg_login = (ms("password_login", "postgres") or 0) + (ms("password_login", "redis") or 0)
        model["peak_logins"] = {
            "logins_per_s": PEAK_LOGINS,
            "idp_cores_all_cold": round(PEAK_LOGINS * idp_login / 1000, 1),
            "idp_cores_half_sso": round(PEAK_LOGINS * (idp_login + idp_hop) / 2 / 1000, 1),
            "db_and_redis_cores_all_cold": round(PEAK_LOGINS * pg_login / 1000, 1),
            "db_commits_per_s": round(PEAK_LOGINS * login["pg_commits_per_op"]),
            "db_rows_per_s": round(PEAK_LOGINS * login["pg_rows_per_op"]),
            "wal_mib_per_s": round(PEAK_LOGINS * login["wal_bytes_per_op"] / 2**20, 1),
            "keycloak_vcpus": round(PEAK_LOGINS / KEYCLOAK["password_login"]),
        }
    onb = cost.get("onboarding", {})
    if onb:
        worker = ms("onboarding", "ekyc_workers") or 0
        per_s_avg = ONBOARDINGS_PER_DAY / 86400
        peak = per_s_avg * 4  # a day's onboardings concentrated in office hours, x4 the mean
        model["onboarding"] = {
            "per_day": ONBOARDINGS_PER_DAY, "mean_per_s": round(per_s_avg, 2),
            "peak_per_s_assumed": round(peak, 2),
            "worker_cpu_s_per_case": round(worker / 1000, 2),
            "worker_cores_mean": round(per_s_avg * worker / 1000, 1),
            "worker_cores_peak": round(peak * worker / 1000, 1),
            "idp_cores_peak": round(peak * (ms("onboarding", "idp") or 0) / 1000, 2),
            "db_rows_per_day": round(ONBOARDINGS_PER_DAY * onb["pg_rows_per_op"]),
        }
    per_row = {t: v["bytes_per_row"] for t, v in tables.items() if v["bytes_per_row"]}
    cases = tables.get("ekyc_cases", {}).get("rows") or 0
    if per_row.get("accounts") and cases:
        # Every citizen: an account, an enrolled face template and one onboarding case with its
        # checks and events (the images expire; the rows stay), in the proportions measured.
        checks = tables["ekyc_case_checks"]["rows"] / cases
        events = tables["ekyc_case_events"]["rows"] / cases
        model["storage_100m_citizens_gib"] = {
            "accounts": round(CITIZENS * per_row["accounts"] / 2**30),
            "face_templates": round(CITIZENS * per_row.get("ekyc_face_templates", 0) / 2**30),
            "cases_with_checks_and_events": round(CITIZENS * (
                per_row["ekyc_cases"] + checks * per_row.get("ekyc_case_checks", 0)
                + events * per_row.get("ekyc_case_events", 0)) / 2**30),
            "checks_per_case": round(checks, 1), "events_per_case": round(events, 1),
            "face_index_in_memory": round(CITIZENS * 549.5 / 2**30),  # bench/face_index.py
            "bytes_per_row": per_row,
        }
        login = cost.get("password_login", {})
        if login and per_row.get("audit_events"):
            model["audit_gib_per_day_at_1_login_per_citizen_per_week"] = round(
                CITIZENS / 7 * per_row["audit_events"] * _audit_per_login(login) / 2**30, 1)
    if cost.get("password_login", {}).get("redis_bytes_per_op"):
        model["redis_gib_for_30_min_of_peak_logins"] = round(
            PEAK_LOGINS * 1800 * cost["password_login"]["redis_bytes_per_op"] / 2**30, 1)
    per_core = {op: cost[op]["per_core_per_s"] for op in cost if cost[op].get("per_core_per_s")}
    model["per_core_per_s"] = per_core
    model["keycloak_per_vcpu_per_s"] = KEYCLOAK
    if run:
        model["idp_rss_mib_per_worker"] = round(
            run["memory"].get("idp", {}).get("peak", 0) / max(1, _idp_workers()), 1)
    return model


def _audit_per_login(login: dict) -> float:
    """Audit entries one cold login writes (the login itself, plus the token grant's)."""
    return login.get("audit_rows_per_op") or 1.0


def _idp_workers() -> int:
    return int(os.environ.get("STACK_IDP_WORKERS", "2")) + 1  # workers + the master


# --------------------------------------------------------------------------- report
def machine() -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=False,
                            capture_output=True, text=True).stdout.strip()
    return {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
            "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()}


def markdown(data: dict) -> str:
    lines = [(f"# National day against `make stack` ({data['machine']['date']}, commit "
             f"{data['machine']['commit']}, {data['machine']['cores']} cores)"), ""]
    cost = data.get("cost")
    if cost:
        lines += ["## Cost of one operation (closed loop, each alone)", "",
                  ("| operation | ops/s (stack) | p50 / p99 ms | IdP CPU ms/op | per core /s | "
                  "PostgreSQL CPU ms/op | Redis CPU ms/op | eKYC worker CPU ms/op | "
                  "commits/op | rows written/op | WAL bytes/op | errors |"),
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for op, r in cost.items():
            c = r["cpu_ms_per_op"]
            lines.append(
                f"| {op} | {r['rate_per_s']} | {r['p50_ms']} / {r['p99_ms']} | {c.get('idp')} | "
                f"{r['per_core_per_s']} | {c.get('postgres')} | {c.get('redis')} | "
                f"{c.get('ekyc_workers', '-')} | {r['pg_commits_per_op']} | "
                f"{r['pg_rows_per_op']} | {r['wal_bytes_per_op']} | {r['errors']} |")
        lines.append("")
    run = data.get("run")
    if run:
        lines += [(f"## Mixed run: {run['duration_s']} s, {run['throughput_per_s']} ops/s, "
                  f"{run['errors']} errors"), "",
                  ("| operation | rate /s | count | errors | p50 ms | p95 ms | p99 ms | max ms | "
                  "generator lag p99 ms |"), "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for op, s in run["summary"].items():
            lines.append(f"| {op} | {run['rates_per_s'].get(op, 0):g} | {s['count']} | "
                         f"{s['errors']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | "
                         f"{s['max_ms']} | {s['lag_p99_ms']} |")
        lines += ["", ("| component | PSS first MiB | last | peak | slope, 2nd half (MiB/min) | "
                  "CPU cores used |"), "|---|---:|---:|---:|---:|---:|"]
        for name, m in run["memory"].items():
            lines.append(f"| {name} | {m['first']} | {m['last']} | {m['peak']} | "
                         f"{m['slope_mib_per_min_2nd_half']} | "
                         f"{run['cpu_cores'].get(name, 0)} |")
        cases = run["cases"]
        lines += ["", (f"Load generator: {run['loadgen_cores']} cores; other jobs on the "
                       f"machine: {run['other_cores']} cores. Onboardings submitted: "
                  f"{cases['submitted']}, states {cases['states']}, not decided "
                  f"{cases['not_decided']} ({cases['all_decided_s_after_end']} s after the "
                  f"end). PostgreSQL during the run: {run['pg']}."), ""]
    model = data.get("model")
    if model:
        lines += ["## Capacity model", "", "```json", json.dumps(model, indent=2), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="cost,run")
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--scale", type=float, default=1.0, help="x the RATES profile")
    parser.add_argument("--workers", type=int, default=32, help="generator threads (run)")
    parser.add_argument("--cost-seconds", type=float, default=30.0)
    parser.add_argument("--cost-workers", type=int, default=8)
    parser.add_argument("--cost-ops", default=",".join(OPS))
    parser.add_argument("--citizens", type=int, default=300)
    parser.add_argument("--cost-cases", type=int, default=20,
                        help="onboardings of new citizens in the cost phase")
    parser.add_argument("--cards", type=int, default=120,
                        help="new citizens' cards for the run's onboardings (then repeats)")
    parser.add_argument("--decide-timeout", type=float, default=600.0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "national-day"))
    args = parser.parse_args(argv)
    args.cost_ops = [op for op in args.cost_ops.split(",") if op]
    args.duration = max(10.0, min(args.duration, 3600.0))
    phases = set(args.phases.split(","))
    env = stack_env()
    cost_cases = args.cost_cases if "cost" in phases and "onboarding" in args.cost_ops else 0
    run_cards = args.cards if "run" in phases else 0
    target = setup_target(env["ISSUER"], env=env, citizens=args.citizens,
                          cards=cost_cases + run_cards)
    data = {"machine": machine(), "args": {k: v for k, v in vars(args).items()}}
    if "cost" in phases:
        data["cost"] = cost_phase(dataclasses.replace(target, cards=target.cards[:cost_cases]),
                                  env, args)
    if "run" in phases:
        data["run"] = run_phase(dataclasses.replace(target, cards=target.cards[cost_cases:]),
                                env, args)
    data["storage"] = storage(env)
    if data.get("cost"):
        data["model"] = capacity_model(data["cost"], data.get("run"), data["storage"])
    Path(args.out + ".json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    Path(args.out + ".md").write_text(markdown(data))
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())

