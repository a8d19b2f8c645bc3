"""The framework ceiling: how many requests/s an EMPTY endpoint gets on one core.

Serves two do-nothing apps exactly as bench/run.py serves our IdP (`gunicorn -w 1 --threads 8`,
pinned to the last CPU, the load generator on the others, 16 keep-alive connections):

- `empty-flask`: a Flask view returning a constant JSON body (bench/ceiling/empty_flask.py);
- `empty-wsgi`: a bare WSGI callable returning the same bytes (bench/ceiling/empty_wsgi.py).

Neither authenticates a client, touches a database or Redis, or issues a token, so each rate is
an upper bound for ANY endpoint written with that stack, and is compared with oidc-provider's
measured rates (bench/results-headline.json). Median of --runs runs.

    uv run python bench/ceiling.py [--runs 5] [--duration 10] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # bench/run.py: process handling shared with the main bench

APPS = {"empty-flask": "empty_flask:app", "empty-wsgi": "empty_wsgi:app"}


def wait_listening(port: int, proc, timeout: float = 30.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def measure(target: str, args) -> list[float]:
    port = bench.free_port()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = bench.start([gunicorn, "-w", "1", "--threads", "8", "-b", f"127.0.0.1:{port}", target],
                       cwd=bench.BENCH / "ceiling", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cpus=bench.SERVER_CPUS)
    try:
        wait_listening(port, proc)
        rates = []
        for _ in range(args.runs):
            out = subprocess.run(
                ["node", str(bench.LOADGEN_DIR / "ceiling.mjs"), f"--url=http://127.0.0.1:{port}",
                 f"--duration={args.duration}", f"--warmup={args.warmup}"],
                capture_output=True, text=True, check=True,
                preexec_fn=bench._affinity(bench.CLIENT_CPUS))
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if result["errors"]:
                raise RuntimeError(f"{target}: {result['errors']} errors")
            rates.append(result["rate"])
        return rates
    finally:
        bench.stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        bench.SERVER_CPUS, bench.CLIENT_CPUS = {cpus[-1]}, set(cpus[:-1])
    bench.ensure_node_deps()
    headline = json.loads((bench.BENCH / "results-headline.json").read_text())
    peer = {s: headline["results"]["peer"][s]["rate"] for s in ("client_credentials", "userinfo")}
    print("| endpoint (one core, gunicorn -w 1 --threads 8) | requests/s (median) | runs |")
    print("|---|---|---|")
    for name, target in APPS.items():
        rates = measure(target, args)
        print(f"| {name} | {statistics.median(rates):,.1f} | "
              f"{', '.join(f'{r:,.0f}' for r in rates)} |")
    for scenario, rate in peer.items():
        print(f"| oidc-provider {scenario} (results-headline.json) | {rate:,.1f} | |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bench.cleanup()
