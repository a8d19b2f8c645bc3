"""Real servers for the portal tests: the IdP under gunicorn (tests/e2e helpers) with the
three portals registered by `python -m clients setup` at the base URLs the tests use, extra
citizens written straight into its database, and each portal started on its own free port
(Python portals under gunicorn, the Node example with `node server.mjs`)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clients import PORTALS
from tests.e2e.conftest import (
    _free_port,
    _spawn,
    _stop,
    _wait_healthy,
    prepare_idp,
    serve_idp,
)

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "clients" / "node-example"
TRANSLATIONS = ROOT / "clients" / "portal" / "translations"
IDP_KEYS = ("IDP_ENV", "ISSUER", "DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "SECRET_KEY",
            "DATA_ENCRYPTION_KEY", "PAIRWISE_SECRET")


@dataclass
class Stack:
    """The running IdP and what the portals need to join it."""
    issuer: str
    env: dict                  # the IdP's environment (database, secrets)
    instance: Path             # PORTAL_INSTANCE: clients/<name>/client.json + key.jwk
    base_urls: dict[str, str]  # portal name -> http://127.0.0.1:<free port>
    log: Path
    citizens: dict[str, str] = field(default_factory=dict)  # pid -> password

    def add_citizen(self, pid: str, password: str, *, level: int = 1, name: str) -> str:
        """A citizen account as onboarding would leave it (no second factor)."""
        from idp import create_app
        from idp.cli import create_citizen
        from tests.conftest import _dispose

        family, _, given = name.partition(" ")
        app = create_app({k: self.env[k] for k in IDP_KEYS})
        with app.app_context():
            create_citizen(pid, password, full_name=name, family_name=family, given_name=given,
                           birthdate=dt.date(1990, 1, 2), level=level,
                           gender="female" if " Thị " in f" {name} " else "male",
                           email=f"{pid}@example.vn", email_verified=True,
                           address={"formatted": "Số 2 Lê Lợi, Huế", "country": "VN"})
        _dispose(app)
        self.citizens[pid] = password
        return pid


def compile_translations() -> None:
    """The portal's .mo files (gitignored; `make translations` builds them too)."""
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            subprocess.run([str(Path(sys.executable).parent / "pybabel"), "compile", "-d",
                            str(TRANSLATIONS)], check=True, capture_output=True, timeout=60)
            return


@contextmanager
def idp_stack(tmp: Path) -> Iterator[Stack]:
    """Migrate, seed, register the portals, serve the IdP; stop it afterwards."""
    compile_translations()
    port = _free_port()
    env, log = prepare_idp(tmp, port)
    stack = Stack(issuer=env["ISSUER"], env=env, instance=tmp / "portals", log=log,
                  base_urls={name: f"http://127.0.0.1:{_free_port()}" for name in PORTALS})
    args = ["clients", "setup", "--instance", str(stack.instance)]
    for name, url in stack.base_urls.items():
        args += ["--base-url", f"{name}={url}"]
    with log.open("a") as out:
        done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=120, check=False)
    if done.returncode != 0:
        pytest.fail(f"python -m clients setup failed:\n{log.read_text()}")
    with serve_idp(env, port, log):
        yield stack


def _portal_env(stack: Stack, name: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLASK_", "IDP_", "PORTAL_", "REDIS_"))}
    env.update({"PORTAL_INSTANCE": str(stack.instance), "PORTAL_ENV": "development",
                "PORTAL_ISSUER": stack.issuer, "PORTAL_BASE_URL": stack.base_urls[name],
                "PORT": stack.base_urls[name].rsplit(":", 1)[1], "PYTHONUNBUFFERED": "1",
                "REDIS_URL": os.environ.get("TEST_REDIS_URL", "")})
    return env


def _wait_portal(proc: subprocess.Popen, base_url: str, log: Path) -> None:
    _wait_healthy([proc], base_url, log, path="/", what=f"the portal at {base_url}")


@contextmanager
def portal(stack: Stack, name: str) -> Iterator[str]:
    """Serve one portal at its base URL; yields the base URL."""
    log = stack.log.parent / f"{name}.log"
    env = _portal_env(stack, name)
    if name == "node_example":
        proc = _start_node(env, log)
    else:
        bind = stack.base_urls[name].removeprefix("http://")
        proc = _spawn(["gunicorn", "-w", "1", "--threads", "4", "-b", bind,
                       "--access-logfile", "-", "--no-control-socket",
                       f'clients.portal:create_app("{name}")'], env, log)
    try:
        _wait_portal(proc, stack.base_urls[name], log)
        yield stack.base_urls[name]
    finally:
        _stop(proc)


def _start_node(env: dict, log: Path) -> subprocess.Popen:
    if not (NODE_DIR / "server.mjs").exists():
        pytest.skip("clients/node-example/server.mjs does not exist yet")
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are not installed (apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True,
                       capture_output=True, timeout=300)
    with log.open("a") as out:
        return subprocess.Popen(["node", "server.mjs"], cwd=NODE_DIR, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
