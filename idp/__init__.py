"""DinhDanh identity provider: the Flask application factory."""

from __future__ import annotations

from flask import Flask, render_template, request, session
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from . import errors, observability, security, sessions, settings, store
from .extensions import babel, csrf, db, migrate


def _sqlite_pragmas(connection, _record) -> None:
    """The embedded database: write-ahead log, fsync at checkpoints, wait instead of failing."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"pool_pre_ping": True}
    # At least as many pooled connections as gunicorn threads, so none is opened per request.
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "pool_recycle": 1800}


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in settings.SUPPORTED_LOCALES:
        return chosen
    for tag in (session.get("ui_locales") or "").split():
        if tag.split("-")[0] in settings.SUPPORTED_LOCALES:
            return tag.split("-")[0]
    return "vi"  # Vietnamese unless the user or the portal asks otherwise


def create_app(test_config: dict | None = None) -> Flask:
    conf = settings.load_settings(test_config)
    app = Flask(__name__, instance_path=conf["INSTANCE_PATH"], instance_relative_config=False)
    app.config.update(conf)
    observability.configure_logging(conf["LOG_FORMAT"])
    settings.validate(conf)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=conf["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(conf["DATABASE_URL"]),
        SESSION_COOKIE_NAME="idp_flow",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=conf["SECURE_COOKIES"],
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=3600,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        JSON_SORT_KEYS=False,
    )
    db.init_app(app)
    if conf["DATABASE_URL"].startswith("sqlite"):
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_pragmas)
    migrate.init_app(app, db, directory=str(__import__("pathlib").Path(__file__).resolve()
                                            .parent.parent / "migrations"))
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    app.extensions["kv"] = store.connect(conf["REDIS_URL"])
    observability.init_app(app)  # request ids and log lines (first and last), /metrics, /readyz

    from .accounts.views import bp as accounts_bp
    from .oauth2.endpoints import bp as oauth2_bp
    from .oauth2.server import create_server

    create_server(app)
    app.register_blueprint(oauth2_bp)
    app.register_blueprint(accounts_bp)
    errors.register(app)
    app.after_request(sessions.apply_cookie)
    app.after_request(security.apply_headers)
    app.before_request(security.refuse_nul_bytes)

    @app.context_processor
    def _globals():
        from flask_babel import get_locale

        return {"csp_nonce": security.nonce, "locale": str(get_locale()),
                "issuer": app.config["ISSUER"], "request_path": request.full_path.rstrip("?")}

    @app.template_filter("datetimeformat")
    def _datetimeformat(value):
        import datetime as dt

        if isinstance(value, (int, float)):
            value = dt.datetime.fromtimestamp(value, dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""

    @app.get("/")
    def home():
        return render_template("home.html")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}  # liveness: the process serves; the backends are /readyz

    import ekyc

    from . import cli

    cli.register(app)
    ekyc.init_app(app)  # onboarding: pages, API, register events, `flask ekyc` commands
    hops = conf["TRUSTED_PROXY_HOPS"]
    if hops:  # remote_addr (throttles, audit) and scheme from the proxies we run, never more
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)
    return app
