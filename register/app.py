"""The population-register stub: its own Flask app, database and port (8100).

`create_app(test_config=None)` reads register.settings, validates them, binds the register's own
SQLAlchemy object, creates the tables with `metadata.create_all()` (own database, no Alembic:
see register.models), makes sure the notification-signing key exists and, unless disabled
(testing), starts the outbox thread that pushes status notifications to the IdP.
Serve it with `gunicorn -b 127.0.0.1:8100 'register.app:create_app()'`.
"""

from __future__ import annotations

import atexit
import logging

from flask import Flask
from sqlalchemy import event

from register import errors, keys, settings
from register.auth import IdpKeys
from register.models import db
from register.notify import OutboxWorker


def _sqlite_pragmas(connection, _record) -> None:
    """The embedded database: write-ahead log and waiting instead of failing on a lock."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"pool_pre_ping": True}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10, "pool_recycle": 1800}


def create_app(test_config: dict | None = None) -> Flask:
    conf = settings.load_settings(test_config)
    app = Flask(__name__, instance_path=conf["REGISTER_INSTANCE_PATH"])
    app.config.update(conf)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings.validate(conf)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=conf["REGISTER_DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(conf["REGISTER_DATABASE_URL"]),
        JSON_SORT_KEYS=False,
    )
    app.json.ensure_ascii = False
    db.init_app(app)
    with app.app_context():
        if conf["REGISTER_DATABASE_URL"].startswith("sqlite"):
            event.listen(db.engine, "connect", _sqlite_pragmas)
        db.create_all()
        keys.ensure_key()
        db.session.remove()
    app.extensions["register_idp_keys"] = IdpKeys(conf)

    from register.api import bp

    app.register_blueprint(bp)
    errors.register(app)

    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    if conf["REGISTER_OUTBOX_THREAD"]:
        worker = OutboxWorker(app)
        app.extensions["register_outbox"] = worker
        worker.start()
        atexit.register(worker.stop)
    return app
