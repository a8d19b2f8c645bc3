"""Operations: request ids, JSON logs without personal data, Prometheus metrics, readiness.

- **Request id**: every request gets one (`X-Request-ID` from the proxy when it is a plain
  token, else a new one), returned in the response header and put on every log line written
  while the request runs.
- **JSON logs** (`LOG_FORMAT=json`, the default; `text` for reading in a terminal): one object
  per line: time, level, logger, message, request id. One line per request from `idp.request`:
  method, the route's endpoint and its path **without the query string** (authorization codes,
  state and login hints travel there), status, duration. Messages never carry personal data:
  `idp.audit` holds who did what, in the database.
- **Metrics** at `/metrics` (Prometheus text format): requests and latency per endpoint,
  logins by outcome, token grants by grant type and outcome, audit events by kind, and, read from
  the database at scrape time, eKYC cases by state (onboarding outcomes and the queue) and the
  RQ queues' length. With `METRICS_TOKEN` set the endpoint wants it as a bearer token; in
  production without one it is not served. Counters are per process: under several gunicorn
  workers set `PROMETHEUS_MULTIPROC_DIR` (an empty folder) before start and they are summed.
- **Readiness** at `/readyz`: the database answers and its schema is at the latest migration,
  Redis answers, signing keys exist. `/healthz` stays the cheap liveness probe.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid

from flask import Response, abort, current_app, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from werkzeug.exceptions import HTTPException

log = logging.getLogger("idp.request")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("dinhdanh_http_requests_total", "HTTP requests by endpoint and status class",
                   ["method", "endpoint", "status"], registry=REGISTRY)
LATENCY = Histogram("dinhdanh_http_request_duration_seconds", "Server time per request",
                    ["endpoint"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LOGINS = Counter("dinhdanh_logins_total", "Sign-in attempts by outcome (audit event login.*)",
                 ["outcome"], registry=REGISTRY)
TOKEN_GRANTS = Counter("dinhdanh_token_grants_total", "Token endpoint answers by grant type",
                       ["grant_type", "outcome"], registry=REGISTRY)
AUDIT_EVENTS = Counter("dinhdanh_audit_events_total", "Audit log entries written, by event",
                       ["event"], registry=REGISTRY)
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


# -- logs ------------------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object per line; the request id of the request being served, if any."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        for key in ("method", "endpoint", "path", "status", "duration_ms"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _with_request_id(factory):
    def make(*args, **kwargs):
        record = factory(*args, **kwargs)
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return record

    make.dinhdanh = True
    return make


def configure_logging(fmt: str) -> None:
    """Root logging: JSON lines (default) or plain text, INFO and above, on stderr. Replaces
    the handler a previous app of this process installed (tests make many apps). Every record
    created while a request runs carries its request id (whatever handler writes it)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "dinhdanh", False):
        logging.setLogRecordFactory(_with_request_id(factory))
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.dinhdanh = True
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "dinhdanh", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


# -- requests ----------------------------------------------------------------------------------------

def _start() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish(response):
    started = g.pop("request_started", None)
    if started is None:
        return response
    elapsed = time.perf_counter() - started
    endpoint = request.endpoint or "unmatched"
    status = response.status_code
    REQUESTS.labels(request.method, endpoint, f"{status // 100}xx").inc()
    LATENCY.labels(endpoint).observe(elapsed)
    if endpoint == "oauth2.token":
        try:
            grant = request.form.get("grant_type", "")
        except HTTPException:  # a body too large or unreadable: the endpoint refused it
            grant = ""
        TOKEN_GRANTS.labels(grant if grant in GRANT_TYPES else "other",
                            "issued" if status == 200 else "refused").inc()
    response.headers["X-Request-ID"] = g.get("request_id", "")
    log.info("%s %s %s", request.method, request.path, status,
             extra={"method": request.method, "endpoint": endpoint, "path": request.path,
                    "status": status, "duration_ms": round(elapsed * 1000, 1)})
    return response


def count_audit_event(event: str) -> None:
    """Called by `idp.audit.record` for every entry (logins are audit events)."""
    AUDIT_EVENTS.labels(event).inc()
    if event.startswith("login."):
        LOGINS.labels(event.removeprefix("login.")).inc()


# -- metrics read at scrape time ------------------------------------------------------------------

class StoreCollector:
    """Gauges read from the database and Redis when Prometheus scrapes (not per process)."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        from .extensions import db

        cases = GaugeMetricFamily("dinhdanh_ekyc_cases", "eKYC cases by state (onboarding "
                                  "outcomes: approved, rejected, needs_review; the queue: "
                                  "submitted, processing, waiting_register)", labels=["state"])
        queues = GaugeMetricFamily("dinhdanh_job_queue_length", "Jobs waiting in each RQ queue",
                                   labels=["queue"])
        with self.app.app_context():
            try:
                rows = db.session.execute(db.text(
                    "SELECT state, count(*) FROM ekyc_cases GROUP BY state")).all()
            finally:
                db.session.remove()
            for state, count in rows:
                cases.add_metric([state], count)
            from . import jobs

            if jobs.backend(self.app) == "rq":
                connection = jobs.rq_connection(self.app)
                for name in (self.app.config["EKYC_QUEUE"], jobs.QUEUE):
                    queues.add_metric([name], connection.llen(f"rq:queue:{name}"))
        yield cases
        yield queues


def metrics_view():
    token = current_app.config["METRICS_TOKEN"]
    if not token and current_app.config["IDP_ENV"] == "production":
        abort(404)
    if token:
        from .crypto import equal

        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer ") or not equal(given[7:], token):
            return {"error": "invalid_token", "error_description": "a bearer token is needed"}, \
                401, {"WWW-Authenticate": 'Bearer realm="metrics", error="invalid_token"'}
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (REQUESTS, LATENCY, LOGINS, TOKEN_GRANTS, AUDIT_EVENTS):
            registry.register(collector)
    registry.register(StoreCollector(current_app._get_current_object()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def readiness() -> tuple[dict, bool]:
    """({check: "ok" | what is wrong}, ready)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from flask_migrate import Migrate  # noqa: F401  (the extension holds the script folder)

    from . import store
    from .extensions import db
    from .models import SigningKey

    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as connection:
            connection.execute(db.text("SELECT 1"))
            current = MigrationContext.configure(connection).get_current_revision()
        directory = current_app.extensions["migrate"].directory
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", directory)
        head = ScriptDirectory.from_config(config).get_current_head()
        checks["database"] = "ok"
        checks["migrations"] = "ok" if current == head else f"at {current}, latest is {head}"
        keys = db.session.scalar(db.select(db.func.count()).select_from(SigningKey)
                                 .where(SigningKey.retired_at.is_(None)))
        checks["signing_keys"] = "ok" if keys else "none"
    except Exception as exc:  # noqa: BLE001  (any failure means not ready; say which kind)
        checks.setdefault("database", f"unavailable ({exc.__class__.__name__})")
    try:
        store.kv().ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"unavailable ({exc.__class__.__name__})"
    return checks, all(v == "ok" for v in checks.values())


def init_app(app) -> None:
    app.before_request(_start)
    app.after_request(_finish)

    @app.get("/metrics")
    def metrics():
        return metrics_view()

    @app.get("/readyz")
    def readyz():
        checks, ready = readiness()
        return {"status": "ready" if ready else "not ready", "checks": checks}, \
            200 if ready else 503
