"""End-to-end fixtures: the real IdP under gunicorn in its own process, and a back-channel
logout receiver, so that off-the-shelf relying-party libraries talk to it over HTTP.

The server runs with IDP_ENV=development (open registration, http on loopback, loopback fetches
for back-channel logout). It gets its own SQLite file unless TEST_DATABASE_URL is set (CI's
PostgreSQL); then the shared database is migrated, emptied and seeded here (and a real Redis,
TEST_REDIS_URL, flushed), so nothing depends on what earlier tests left behind. The fixture is package-scoped: it stops before any test
outside tests/e2e/ runs, so the other tests' schema resets never race with this process.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests

from tests.conftest import _clean, _dispose, base_config

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30  # gunicorn imports the app and binds; generous for a loaded CI machine
_SERVER_LOG_KEY = pytest.StashKey[Path]()


@dataclass
class IdPServer:
    issuer: str
    log_path: Path  # migrate, seed and gunicorn output; shown in a failing test's report


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(tmp: Path, port: int) -> dict:
    shared = base_config()  # same secrets as the in-process tests: a shared database stays readable
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "IDP_"))}
    env.update({
        "IDP_ENV": "development",
        "ISSUER": f"http://127.0.0.1:{port}",
        "DATABASE_URL": os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp / 'e2e.db'}",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", ""),
        "INSTANCE_PATH": str(tmp / "instance"),
        "SECRET_KEY": shared["SECRET_KEY"],
        "DATA_ENCRYPTION_KEY": shared["DATA_ENCRYPTION_KEY"],
        "PAIRWISE_SECRET": shared["PAIRWISE_SECRET"],
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _flask(env: dict, *args: str, log: Path) -> None:
    """`flask --app wsgi ...` with the venv's interpreter (what `uv run flask` resolves to)."""
    with log.open("a") as out:
        out.write(f"$ flask --app wsgi {' '.join(args)}\n")
        out.flush()
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                              env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120,
                              check=False)
    if done.returncode != 0:
        pytest.fail(f"flask {' '.join(args)} failed ({done.returncode}):\n{log.read_text()}")


def _empty_shared_stores(env: dict) -> None:
    """A shared PostgreSQL/Redis holds what earlier tests left: start from empty tables."""
    from idp import create_app

    app = create_app({k: env[k] for k in ("IDP_ENV", "ISSUER", "DATABASE_URL", "REDIS_URL",
                                          "INSTANCE_PATH", "SECRET_KEY", "DATA_ENCRYPTION_KEY",
                                          "PAIRWISE_SECRET")})
    _clean(app, flush_redis=bool(env["REDIS_URL"]))
    _dispose(app)


def _wait_healthy(procs: list[subprocess.Popen], base_url: str, log: Path, *,
                  path: str = "/healthz", what: str = "the IdP") -> None:
    """Until `base_url + path` answers 200; fails with the log if a process exits first or
    nothing answers within STARTUP_SECONDS."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                command = " ".join(str(a) for a in proc.args)[:120]
                pytest.fail(f"{what} ({command}) exited with {proc.returncode} at start:\n"
                            f"{log.read_text()}")
        try:
            if requests.get(f"{base_url}{path}", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} did not answer {path} within {STARTUP_SECONDS} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _spawn(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Start a long-running process in its own process group, appending to the log."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def prepare_idp(tmp: Path, port: int) -> tuple[dict, Path]:
    """The environment of an IdP on `port` with its database migrated, emptied when shared
    (CI's PostgreSQL and Redis) and seeded; returns it with the log file."""
    env = _server_env(tmp, port)
    log = tmp / "idp.log"
    _flask(env, "db", "upgrade", log=log)
    if os.environ.get("TEST_DATABASE_URL") or env["REDIS_URL"]:
        _empty_shared_stores(env)
    _flask(env, "seed", log=log)
    return env, log


@contextmanager
def serve_idp(env: dict, port: int, log: Path) -> Iterator[None]:
    """gunicorn on `port` (and an RQ job worker with a real Redis) until the block ends."""
    procs = [_spawn(["gunicorn", "-w", "1", "--threads", "4", "-b", f"127.0.0.1:{port}",
                     "--access-logfile", "-", "--no-control-socket", "wsgi:app"], env, log)]
    if env["REDIS_URL"]:
        procs.append(_spawn(["flask", "--app", "wsgi", "jobs", "worker"], env, log))
    try:
        _wait_healthy(procs, env["ISSUER"], log)
        yield
    finally:
        for proc in procs:
            _stop(proc)


@pytest.fixture(scope="package")
def idp_server(tmp_path_factory) -> IdPServer:
    """The IdP under gunicorn on a free loopback port, migrated and seeded (demo citizen).
    With a real Redis, back-channel logout jobs go to RQ, so a job worker runs beside it as
    in production; with the embedded stand-in the web process runs them in threads."""
    tmp = tmp_path_factory.mktemp("e2e-idp")
    port = _free_port()
    env, log = prepare_idp(tmp, port)
    with serve_idp(env, port, log):
        yield IdPServer(issuer=env["ISSUER"], log_path=log)


@pytest.fixture(autouse=True)
def _attach_server_log(request):
    """Remember where the server log is so a failing test's report can show it."""
    if "idp_server" in request.fixturenames:
        request.node.stash[_SERVER_LOG_KEY] = request.getfixturevalue("idp_server").log_path
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    log = item.stash.get(_SERVER_LOG_KEY, None)
    if report.failed and log is not None and log.exists():
        report.sections.append(("IdP server log (last 200 lines)",
                                "\n".join(log.read_text(errors="replace").splitlines()[-200:])))


class LogoutReceiver:
    """A relying party's back-channel logout endpoint (OIDC Back-Channel Logout 1.0 2.5)."""

    def __init__(self):
        self.tokens: queue.Queue[dict] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                receiver.tokens.put({"content_type": self.headers.get("Content-Type", ""),
                                     "form": {k: v for k, v in parse_qs(body).items()}})
                self.send_response(200)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # keep pytest output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self._server.server_address[1]}/backchannel-logout"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def next_delivery(self, timeout: float = 15) -> dict:
        """The next POST received; the IdP delivers from a background job, hence the wait."""
        try:
            return self.tokens.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("no back-channel logout token arrived")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def logout_receiver():
    receiver = LogoutReceiver()
    yield receiver
    receiver.close()

