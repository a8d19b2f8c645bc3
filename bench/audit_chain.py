"""How many audit entries per second the hash chains take (issue 7's capacity model).

Every append locks its chain's head row, inserts the entry and commits (idp/audit.py), so
appends to one chain are serialised across all IdP processes: with one chain its rate was a
ceiling for every operation that writes an audit entry (a password login writes one). The log
is `AUDIT_CHAINS` chains (default 16; set it in the environment, e.g. `AUDIT_CHAINS=1` for the
old single chain), each thread appending to its own. This appends from `--threads` threads in
each of `--processes` processes against the database of a running `make stack` (or
`--database-url`) for `--seconds`, `--runs` times, and prints the median rate and latencies.
The entries it writes are ordinary audit entries (event `bench.append`, no personal data).

    uv run python bench/audit_chain.py --threads 1,4,16 --seconds 10 --runs 3
    AUDIT_CHAINS=1 uv run python bench/audit_chain.py --processes 2 --threads 8
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.national_day import stack_env


def measure(app, threads: int, seconds: float) -> dict:
    from idp import audit

    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop():
        mine = []
        with app.app_context():
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                audit.record("bench.append", worker=threading.get_ident() % 1000)
                mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    start = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.monotonic() - start
    latencies.sort()
    return {"threads": threads, "appends": len(latencies),
            "per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2)}


def _app(database_url: str | None):
    from idp import create_app

    env = stack_env()
    app = create_app({"IDP_ENV": "development", "ISSUER": env["ISSUER"],
                      "DATABASE_URL": database_url or env["DATABASE_URL"],
                      "REDIS_URL": env["REDIS_URL"], "INSTANCE_PATH": env["INSTANCE_PATH"]})
    logging.getLogger("idp.audit").setLevel(logging.WARNING)  # one line per append otherwise
    return app


def _one_process(args: tuple) -> dict:
    database_url, threads, seconds = args
    return measure(_app(database_url), threads, seconds)


def run_once(database_url, processes: int, threads: int, seconds: float) -> dict:
    """`processes` processes of `threads` threads appending at the same time."""
    if processes == 1:
        return measure(_app(database_url), threads, seconds)
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_one_process, [(database_url, threads, seconds)] * processes)
    return {"threads": threads, "processes": processes,
            "appends": sum(p["appends"] for p in parts),
            "per_s": round(sum(p["per_s"] for p in parts), 1),
            "p50_ms": max(p["p50_ms"] for p in parts), "p99_ms": max(p["p99_ms"] for p in parts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,4,16", help="threads per process")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    app = _app(args.database_url)
    from idp.extensions import db

    with app.app_context():
        engine = db.engine
        print(f"database: {engine.dialect.name}, AUDIT_CHAINS={app.config['AUDIT_CHAINS']}, "
              f"{args.processes} process(es)", flush=True)
    for n in (int(x) for x in args.threads.split(",")):
        runs = [run_once(args.database_url, max(1, min(args.processes, 16)), n,
                         min(args.seconds, 120.0)) for _ in range(max(1, args.runs))]
        row = {"threads": n, "processes": args.processes,
               "per_s_median": statistics.median(r["per_s"] for r in runs),
               "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
               "p99_ms_median": statistics.median(r["p99_ms"] for r in runs)}
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
