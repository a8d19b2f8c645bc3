"""Shared fixtures: a fresh app per test on a migrated database and a clean Redis.

`TEST_DATABASE_URL` (e.g. PostgreSQL in CI) and `TEST_REDIS_URL` (a real Redis) select the real
services; without them the embedded defaults (SQLite file, in-process fakeredis) are used.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from idp import create_app
from idp.extensions import db

ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="idp-tests-"))
DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'test.db'}"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
ISSUER = "http://127.0.0.1:8000"


def base_config(**overrides) -> dict:
    conf = {
        "IDP_ENV": "testing",
        "ISSUER": ISSUER,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "INSTANCE_PATH": str(_TMP / "instance"),
        "SECRET_KEY": "test-secret-key-not-for-production",
        "DATA_ENCRYPTION_KEY": "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "PAIRWISE_SECRET": "test-pairwise-secret",
        "JOBS_SYNC": True,
        "TESTING": True,
    }
    conf.update(overrides)
    return conf


@pytest.fixture(scope="session")
def _migrated():
    """Run the Alembic migrations once: the schema under test is the one we ship."""
    app = create_app(base_config())
    with app.app_context():
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(directory=str(ROOT / "migrations"))
    _dispose(app)
    return True


def _dispose(app) -> None:
    """Close pooled connections so no test leaks sockets (ResourceWarning is an error here)."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["kv"].close()
    pool = getattr(app.extensions["kv"], "connection_pool", None)
    if pool is not None:
        pool.disconnect()


def _clean(app, flush_redis: bool = True) -> None:
    """Empty every table (and Redis): each test starts from nothing but the seed."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":  # the audit log's append-only trigger
            db.session.execute(text("SET LOCAL dinhdanh.audit_maintenance = 'on'"))
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        if flush_redis:
            app.extensions["kv"].flushdb()
        from idp import keys
        from idp.clients import forget_client

        keys.invalidate()
        forget_client()


_SNAPSHOT: dict = {}
SEEDED_TABLES = ("signing_keys", "accounts", "operators")


def _seed(app) -> None:
    """The development seed; later tests re-insert the first one's rows (keys and argon2
    hashes are slow to make, and identical seeds keep tests independent of each other)."""
    with app.app_context():
        tables = {t.name: t for t in db.metadata.sorted_tables}
        if not _SNAPSHOT:
            from idp.cli import seed_demo

            seed_demo()
            for name in SEEDED_TABLES:
                rows = db.session.execute(tables[name].select()).mappings().all()
                _SNAPSHOT[name] = [dict(row) for row in rows]
            return
        for name in SEEDED_TABLES:
            if _SNAPSHOT[name]:
                db.session.execute(tables[name].insert(), _SNAPSHOT[name])
        db.session.commit()


@pytest.fixture
def make_app(_migrated):
    """Factory for an app with extra settings; the database and Redis start empty."""
    created = []

    def factory(**overrides):
        app = create_app(base_config(**overrides))
        if not created:
            _clean(app)
            _seed(app)
        created.append(app)
        return app

    yield factory
    for created_app in created:
        _dispose(created_app)


@pytest.fixture
def rp_server():
    """A portal's web server on 127.0.0.1 (jwks, sector documents, logout receivers)."""
    from tests.rp_server import RPServer

    with RPServer() as server:
        yield server


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()
