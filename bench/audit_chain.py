"""How many audit entries per second the single hash chain takes (issue 7's capacity model).

Every append locks the one chain-head row, inserts the entry and commits (idp/audit.py), so
appends are serialised across all IdP processes: the chain's rate is a ceiling for every
operation that writes an audit entry (a password login writes one). This appends from
`--threads` threads of one process against the database of a running `make stack` (or
`--database-url`) for `--seconds`, `--runs` times, and prints the median rate and latencies.
The entries it writes are ordinary audit entries (event `bench.append`, no personal data).

    uv run python bench/audit_chain.py --threads 1,4,16 --seconds 10 --runs 3
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    env = stack_env()
    from idp import create_app

    app = create_app({"IDP_ENV": "development", "ISSUER": env["ISSUER"],
                      "DATABASE_URL": args.database_url or env["DATABASE_URL"],
                      "REDIS_URL": env["REDIS_URL"], "INSTANCE_PATH": env["INSTANCE_PATH"]})
    from idp.extensions import db

    logging.getLogger("idp.audit").setLevel(logging.WARNING)  # one line per append otherwise
    with app.app_context():
        engine = db.engine
        print(f"database: {engine.dialect.name}, pool {engine.pool.size()}", flush=True)
    out = []
    for n in (int(x) for x in args.threads.split(",")):
        runs = [measure(app, n, min(args.seconds, 120.0)) for _ in range(max(1, args.runs))]
        row = {"threads": n, "per_s_median": statistics.median(r["per_s"] for r in runs),
               "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
               "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
               "runs": runs}
        out.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "runs"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
