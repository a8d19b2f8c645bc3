"""Redis or PostgreSQL unreachable is a 503 with Retry-After, never a 500: a JSON
`temporarily_unavailable` on API and OAuth paths, a translated page elsewhere; the database
session is rolled back and the app serves again as soon as the backend is back.

The outages are real: an app whose Redis or database URL points at a closed port (the driver's
own connection error), and a database connection that the driver reports as cut mid-request
(the dialect's own OperationalError, raised where the driver raises it)."""

from __future__ import annotations

import socket

import pytest
import redis
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import event

from ekyc import policy
from idp import store
from idp.extensions import db
from tests.helpers import full_login, register_client

MESSAGE = "The service is temporarily unavailable. Try again in a moment."


def _closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _translated(app, locale: str) -> str:
    with app.test_request_context("/"), force_locale(locale):
        return _(MESSAGE)


def _assert_json_503(response, description: str = MESSAGE) -> None:
    assert response.status_code == 503, response.text[:300]
    assert response.headers["Retry-After"].isdigit()
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == {"error": "temporarily_unavailable",
                             "error_description": description}


def _assert_page_503(response, text: str = MESSAGE) -> None:
    assert response.status_code == 503, response.text[:300]
    assert response.headers["Retry-After"].isdigit()
    assert response.mimetype == "text/html"
    assert text in response.text
    assert "temporarily_unavailable" in response.text  # the error code shown on the page


@pytest.fixture
def redis_down(app):
    """The app's Redis at a port where nothing listens: every command fails to connect."""
    working = app.extensions["kv"]
    app.extensions["kv"] = store.connect(f"redis://127.0.0.1:{_closed_port()}/0")
    yield app
    app.extensions["kv"].close()
    app.extensions["kv"].connection_pool.disconnect()
    app.extensions["kv"] = working


@pytest.fixture
def db_down(app, make_app):
    """A second app (same Redis, same process) whose PostgreSQL is at a closed port."""
    rp = register_client(app)  # a real client in the working database
    down = make_app(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:"
                                 f"{_closed_port()}/dinhdanh?connect_timeout=2")
    return down, rp


# -- Redis unreachable ---------------------------------------------------------------------------

def test_redis_down_page_is_a_translated_503(redis_down):
    client = redis_down.test_client()
    client.set_cookie("idp_session", "a" * 43)  # a signed-in browser: the session is in Redis
    client.get("/lang/en")
    _assert_page_503(client.get("/account"))
    client.get("/lang/vi")
    _assert_page_503(client.get("/account"), _translated(redis_down, "vi"))


def test_redis_down_token_endpoint_is_json_503(redis_down):
    rp = register_client(redis_down)
    response = redis_down.test_client().post(
        "/token", auth=rp.auth, data={"grant_type": "authorization_code", "code": "x" * 43,
                                      "redirect_uri": rp.redirect_uri})
    _assert_json_503(response)


def test_redis_down_onboarding_api_is_json_503_in_the_callers_language(redis_down):
    client = redis_down.test_client()
    body = {"consent": True, "consent_version": policy.CONSENT_VERSION}
    response = client.post("/api/onboarding/v1/cases", json=body,
                           headers={"Accept-Language": "en"})
    _assert_json_503(response)
    response = client.post("/api/onboarding/v1/cases", json=body,
                           headers={"Accept-Language": "vi"})
    _assert_json_503(response, _translated(redis_down, "vi"))


def test_redis_down_readiness_names_redis_and_is_503(redis_down):
    response = redis_down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"].startswith("unavailable")


# -- PostgreSQL unreachable ----------------------------------------------------------------------

def test_database_down_page_is_a_503(db_down):
    down, rp = db_down
    client = down.test_client()
    client.get("/lang/en")
    response = client.get("/authorize", query_string={
        "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "response_type": "code",
        "scope": "openid", "state": "s", "nonce": "n"})
    _assert_page_503(response)


def test_database_down_token_endpoint_is_json_503(db_down):
    down, rp = db_down
    response = down.test_client().post(
        "/token", auth=rp.auth, data={"grant_type": "refresh_token", "refresh_token": "x" * 43})
    _assert_json_503(response)


def test_database_down_onboarding_api_is_json_503(db_down):
    down, _rp = db_down
    response = down.test_client().post(
        "/api/onboarding/v1/cases", headers={"Accept-Language": "en"},
        json={"consent": True, "consent_version": policy.CONSENT_VERSION})
    _assert_json_503(response)


def test_database_down_readiness_is_503(db_down):
    down, _rp = db_down
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"].startswith("unavailable")


def test_liveness_stays_up_while_the_backends_are_down(db_down, redis_down):
    """/healthz says the process serves: an orchestrator must not restart every IdP instance
    because PostgreSQL or Redis blinked (readiness reports those)."""
    for down in (db_down[0], redis_down):
        response = down.test_client().get("/healthz")
        assert (response.status_code, response.json) == (200, {"status": "ok"})


# -- an outage in the middle of serving, then recovery -------------------------------------------

def test_connection_cut_mid_request_is_503_then_the_app_recovers(app, client):
    """The driver reports the connection cut (as when PostgreSQL restarts): 503; once the
    database answers again the next requests succeed on a fresh connection."""
    rp = register_client(app)
    tokens = full_login(client, rp, scope="openid profile offline_access")
    dbapi = None
    with app.app_context():
        engine = db.engine
        dbapi = engine.dialect.loaded_dbapi

    def cut(*_args, **_kwargs):
        raise dbapi.OperationalError("server closed the connection unexpectedly")

    event.listen(engine, "before_cursor_execute", cut)
    try:
        response = client.post("/token", auth=rp.auth, data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        _assert_json_503(response)
        client.get("/lang/en")
        _assert_page_503(client.get("/account"))
    finally:
        event.remove(engine, "before_cursor_execute", cut)
    response = client.post("/token", auth=rp.auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text  # nothing was half-written by the 503
    assert client.get("/account").status_code == 200


def test_redis_error_mid_request_is_503_then_the_app_recovers(app, client, monkeypatch):
    """Redis restarting answers with connection errors (or LOADING while it reads its AOF)."""
    rp = register_client(app)
    tokens = full_login(client, rp, scope="openid profile offline_access")
    kv = app.extensions["kv"]
    for error in (redis.exceptions.ConnectionError("Error 111 connecting. Connection refused."),
                  redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
                  redis.exceptions.TimeoutError("Timeout reading from socket")):
        def fail(*_args, _error=error, **_kwargs):
            raise _error

        monkeypatch.setattr(kv, "execute_command", fail)
        client.get("/lang/en")
        _assert_page_503(client.get("/account"))
        monkeypatch.undo()
    assert client.get("/account").status_code == 200
    response = client.post("/token", auth=rp.auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text
