"""Fixtures of the register stub tests: a seeded database, IdP keys and signed assertions.

The database is `TEST_REGISTER_DATABASE_URL` when set (PostgreSQL in CI; give it a database of
its own, the register's tables are dropped and recreated here) or a temporary SQLite file. It is
seeded once per session with the first 300 synthetic citizens; each test gets a fresh app and
starts from that seed (statuses restored, logs, outbox, faults and used jtis emptied).
The IdP's keys are generated here and injected with REGISTER_IDP_JWKS.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from register import seed as synthetic
from register.app import create_app
from register.models import AccessLog, CitizenRecord, FaultState, OutboxMessage, UsedAssertion, db

_TMP = Path(tempfile.mkdtemp(prefix="register-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
DATABASE_URL = os.environ.get("TEST_REGISTER_DATABASE_URL") or \
    f"sqlite:///{_TMP / 'register.db'}"
SEED_COUNT = 300
BASE_URL = "http://127.0.0.1:8100"
ISSUER = "http://127.0.0.1:8000"
CLIENT_ID = "dinhdanh-idp"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
LOG_HASH_KEY = "register-test-log-hash-key"
PURPOSE = "ekyc onboarding case c-123"

RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "idp-rs256-test", "alg": "RS256",
                                                "use": "sig"})
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-es256-test", "alg": "ES256",
                                                 "use": "sig"})
IDP_JWKS = {"keys": [RSA_KEY.as_dict(private=False), EC_KEY.as_dict(private=False)]}


def base_config(**overrides) -> dict:
    conf = {
        "REGISTER_ENV": "testing",
        "TESTING": True,
        "REGISTER_DATABASE_URL": DATABASE_URL,
        "REGISTER_INSTANCE_PATH": str(_TMP / "instance"),
        "REGISTER_BASE_URL": BASE_URL,
        "REGISTER_TRUSTED_ISSUER": ISSUER,
        "REGISTER_CLIENT_ID": CLIENT_ID,
        "REGISTER_IDP_JWKS": json.dumps(IDP_JWKS),
        "REGISTER_LOG_HASH_KEY": LOG_HASH_KEY,
        "REGISTER_ADMIN_TOKEN": ADMIN_TOKEN,
        "REGISTER_NOTIFY_URL": "http://127.0.0.1:9/unused",
        "REGISTER_NOTIFY_TIMEOUT": 2.0,
        "REGISTER_OUTBOX_THREAD": False,
        "REGISTER_LATENCY_MS": 0,
        "REGISTER_ERROR_RATE": 0.0,
        "REGISTER_OUTAGE": False,
    }
    conf.update(overrides)
    return conf


def assertion(key=None, *, header: dict | None = None, **claims) -> str:
    """A client assertion as the IdP makes it; keyword arguments override (None = drop)."""
    key = key or RSA_KEY
    now = int(time.time())
    body = {"iss": ISSUER, "sub": CLIENT_ID, "aud": BASE_URL, "iat": now, "exp": now + 60,
            "jti": secrets.token_urlsafe(12), "purpose": PURPOSE}
    for name, value in claims.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    head = {"alg": key.alg, "kid": key.kid, **(header or {})}
    head = {name: value for name, value in head.items() if value is not None}
    return jwt.encode(head, body, key, algorithms=[head["alg"]])


def bearer(token: str | None = None) -> dict:
    return {"Authorization": f"Bearer {token or assertion()}"}


def dispose(app) -> None:
    """Close pooled connections so no test leaks sockets (ResourceWarning is an error)."""
    worker = app.extensions.get("register_outbox")
    if worker is not None:
        worker.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def seeded():
    """Drop and recreate the register tables, then seed the first SEED_COUNT citizens."""
    from register.seeding import seed_database

    app = create_app(base_config())
    with app.app_context():
        db.drop_all()
        db.create_all()
        stats = seed_database(SEED_COUNT, synthetic.DEFAULT_SEED)
    dispose(app)
    return stats


def _reset(app) -> None:
    originals = {c.national_id: c.status for c in synthetic.synthetic_citizens(SEED_COUNT)}
    with app.app_context():
        for model in (AccessLog, OutboxMessage, UsedAssertion, FaultState):
            db.session.execute(db.delete(model))
        changed = db.session.scalars(db.select(CitizenRecord).where(
            CitizenRecord.status_changed_at.is_not(None))).all()
        for record in changed:
            record.status = originals[record.national_id]
            record.status_changed_at = None
        db.session.commit()


@pytest.fixture
def make_app(seeded):
    """Build apps with config overrides; every one is disposed after the test."""
    apps = []

    def factory(**overrides):
        app = create_app(base_config(**overrides))
        apps.append(app)
        _reset(app)
        return app

    yield factory
    for app in apps:
        dispose(app)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def citizens():
    return synthetic.synthetic_citizens(SEED_COUNT)


class FakeServer:
    """A tiny real HTTP server on a free port; `responses` is the queue of statuses to answer
    (the last one repeats) and `received` records every request."""

    def __init__(self, statuses=(202,), body: bytes = b"", content_type="application/json"):
        self.statuses = list(statuses)
        self.body = body
        self.content_type = content_type
        self.received: list[dict] = []
        self.event = threading.Event()
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    @Request.application
    def _wsgi(self, request: Request) -> Response:
        self.received.append({"path": request.path, "method": request.method,
                              "headers": dict(request.headers),
                              "body": request.get_data()})
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        self.event.set()
        return Response(self.body, status=status, content_type=self.content_type)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def fake_server():
    servers = []

    def factory(**kwargs) -> FakeServer:
        server = FakeServer(**kwargs).__enter__()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.__exit__(None, None, None)
