"""The real `make stack` topology (scripts/stack.sh) for the fault tests: PostgreSQL, Redis
with AOF, the IdP under gunicorn, eKYC workers, the register stub, in a temporary STACK_DIR on
free ports, with short recovery settings.

Opt-in: the tests run when STACK_TESTS=1 and PostgreSQL (/usr/lib/postgresql/*/bin) and
redis-server are installed (.ci/run sets it for its postgres-redis suite); otherwise they are
skipped with the reason. The stack is always stopped at the end, also when a test fails, and
failures carry the tail of its logs. Each fault's cost is printed in the terminal summary and
written as JSON to $STACK_FAULT_REPORT when set.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
STACK_SH = ROOT / "scripts" / "stack.sh"
START_TIMEOUT = 240.0

# Short recovery settings: a dead worker's case is resumed within ~25 s, a case waiting for
# the register is asked again within 10 s, the register breaker probes after 3 s.
RECOVERY_ENV = {
    "EKYC_LEASE_SECONDS": "20",
    "EKYC_SWEEP_INTERVAL": "3",
    "EKYC_RETRY_BASE": "2",
    "EKYC_RETRY_MAX": "10",
    "REGISTER_BREAKER_COOLDOWN": "3",
    "REGISTER_TIMEOUT": "2",
    "REGISTER_RETRIES": "1",
    "TRUSTED_PROXY_HOPS": "1",  # the load generator's X-Forwarded-For: one address per citizen
    "STACK_PORTALS": "0",       # the portals are not under test here
    "STACK_IDP_WORKERS": "2",
    "STACK_EKYC_WORKERS": "2",  # a duplicate pair can be processed at the same time
}

# Filled by the tests (one dict per fault), printed by pytest_terminal_summary.
FAULT_REPORT: list[dict] = []


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def unavailable_reason() -> str | None:
    if os.environ.get("STACK_TESTS") != "1":
        return "stack fault tests are opt-in: set STACK_TESTS=1 (.ci/run does for postgres-redis)"
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "needs PostgreSQL binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        return "needs redis-server and redis-cli (apt-get install redis-server)"
    if not (ROOT / ".venv" / "bin" / "gunicorn").exists():
        return "needs the project's .venv (make install)"
    if shutil.which("curl") is None:
        return "needs curl (scripts/stack.sh waits for the processes with it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "as root, PostgreSQL runs as the `postgres` user, which does not exist"
    return None


class Stack:
    """A running scripts/stack.sh in its own folder; `fault()` runs a drill against it."""

    def __init__(self, folder: Path, env: dict[str, str], ports: dict[str, int]):
        self.folder = folder
        self.dir = folder / "stack"
        self.env = env
        self.ports = ports
        self.issuer = f"http://127.0.0.1:{ports['IDP_PORT']}"
        self.register_url = f"http://127.0.0.1:{ports['REGISTER_PORT']}"
        self.pg_dsn = f"postgresql://postgres@127.0.0.1:{ports['STACK_PG_PORT']}/dinhdanh"
        self.proc: subprocess.Popen | None = None
        self.log = folder / "stack.out"

    # -- the processes' environment (run/env, written by stack.sh) for flask commands
    def app_env(self) -> dict[str, str]:
        out = {}
        for line in (self.dir / "run" / "env").read_text().splitlines():
            name, _, value = line.partition("=")
            out[name] = value.strip("'\"")
        return {**RECOVERY_ENV, **out}

    def script(self, *args: str, timeout: float = 120.0) -> str:
        done = subprocess.run([str(STACK_SH), *args], cwd=ROOT, env=self.env, text=True,
                              capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"scripts/stack.sh {' '.join(args)} failed "
                                 f"({done.returncode}): {done.stdout}{done.stderr}\n"
                                 f"{self.logs_tail()}")
        return done.stdout

    def fault(self, drill: str, *args: str) -> str:
        return self.script("fault", drill, *args)

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([str(STACK_SH), "start"], cwd=ROOT, env=self.env,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        ready = self.dir / "run" / "ready"
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"scripts/stack.sh start exited with {self.proc.returncode}"
                                   f"\n{self.logs_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack was not ready in {START_TIMEOUT:.0f} s\n"
                                   f"{self.logs_tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        try:
            subprocess.run([str(STACK_SH), "stop"], cwd=ROOT, env=self.env, timeout=120,
                           capture_output=True, check=False)
        except subprocess.TimeoutExpired:
            pass
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue

    def logs_tail(self, lines: int = 25) -> str:
        """The last lines of every process log, for failure messages."""
        parts = []
        files = [self.log, *sorted((self.dir / "logs").glob("*.log")),
                 self.dir / "pg" / "server.log"]
        for path in files:
            try:
                text = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            interesting = [t for t in text if "UNSAFE" not in t][-lines:]
            parts.append(f"--- {path.name} (last {len(interesting)} lines)\n"
                         + "\n".join(t[:400] for t in interesting))
        return "\n".join(parts)

    # -- the stack's PostgreSQL, as an operator would look at it
    def query(self, sql: str, params: tuple = (), attempts: int = 20) -> list[tuple]:
        import psycopg

        for attempt in range(attempts):
            try:
                with psycopg.connect(self.pg_dsn, connect_timeout=3) as conn:
                    return conn.execute(sql, params).fetchall()
            except psycopg.OperationalError:  # PostgreSQL restarting (a fault under test)
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)
        return []


@pytest.fixture(scope="session")
def stack():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    base = os.environ.get("STACK_TMP") or tempfile.gettempdir()
    folder = Path(tempfile.mkdtemp(prefix="dinhdanh-stack-", dir=base))
    folder.chmod(0o755)  # PostgreSQL runs as `postgres` under root: it must reach pg/
    names = ("IDP_PORT", "REGISTER_PORT", "PORTAL1_PORT", "PORTAL2_PORT", "STACK_PG_PORT",
             "STACK_REDIS_PORT")
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEST_", "PYTEST_")) and k not in (
               "DATABASE_URL", "REDIS_URL", "ISSUER", "INSTANCE_PATH", "IDP_ENV",
               "PROMETHEUS_MULTIPROC_DIR", "JOBS_BACKEND", "JOBS_SYNC")}
    env.update(RECOVERY_ENV)
    env.update({name: str(port) for name, port in ports.items()})
    env.update(STACK_DIR=str(folder / "stack"), HOST="127.0.0.1")
    running = Stack(folder, env, ports)
    try:  # stopped whatever happens, Ctrl-C included
        try:
            running.start()
        except (RuntimeError, OSError) as exc:
            pytest.fail(f"the stack did not start: {exc}", pytrace=False)
        yield running
    finally:
        running.stop()
        if os.environ.get("STACK_KEEP") == "1":
            print(f"\nstack folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def fault_report() -> list[dict]:
    return FAULT_REPORT


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}:{v}" for k, v in value.items()) or "none"
    return str(value)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not FAULT_REPORT:
        return
    tr = terminalreporter
    tr.section("what each fault cost (tests/stack)")
    header = ("fault", "ops", "failed", "failed by kind", "recover s", "cases", "settle s",
              "outcomes", "note")
    rows = [(r["fault"], r.get("ops"), r.get("failed"), r.get("failed_by_kind"),
             r.get("recover_s"), r.get("cases_affected"), r.get("cases_settle_s"),
             r.get("case_outcomes"), r.get("note", "")) for r in FAULT_REPORT]
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    tr.write_line("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for c in cells:
        tr.write_line("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    tr.write_line("ops/failed: load operations that overlapped the fault and how many failed "
                  "(status, or the connection error); recover s: from the fault until the last "
                  "failed operation ended; cases: onboarding cases in flight or submitted "
                  "meanwhile; settle s: from the fault until all were approved, rejected or "
                  "in review.")
    target = os.environ.get("STACK_FAULT_REPORT")
    if target:
        Path(target).write_text(json.dumps(FAULT_REPORT, indent=2, default=str) + "\n")
        tr.write_line(f"fault report written to {target}")
