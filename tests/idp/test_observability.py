"""Request ids, JSON log lines without personal data, /metrics and /readyz."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from idp.extensions import db
from idp.observability import JsonFormatter
from tests.helpers import CITIZEN_PASSWORD, CITIZEN_PID, full_login, login, register_client


def _samples(response) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_response_carries_a_request_id(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert len(first) == 32 and first != second
    given = client.get("/healthz", headers={"X-Request-ID": "proxy-abc-123"})
    assert given.headers["X-Request-ID"] == "proxy-abc-123"
    forged = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert len(forged.headers["X-Request-ID"]) == 32  # replaced, not echoed


def test_log_lines_are_json_with_the_request_id_and_no_personal_data(client, caplog):
    caplog.set_level(logging.INFO)
    response = client.get(f"/login?login_hint={CITIZEN_PID}&state=secret-state-value")
    login(client)
    login(client, password="wrong-password")
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert lines
    for line in lines:
        entry = json.loads(line)  # every line is one JSON object
        assert {"ts", "level", "logger", "msg"} <= set(entry)
        assert CITIZEN_PID not in line and CITIZEN_PASSWORD not in line
        assert "secret-state-value" not in line
    requests = [json.loads(line) for line in lines if '"logger": "idp.request"' in line]
    first = next(r for r in requests if r["endpoint"] == "accounts.login")
    assert first["path"] == "/login" and first["status"] == 200
    assert first["request_id"] == response.headers["X-Request-ID"]
    assert isinstance(first["duration_ms"], float)


def test_metrics_count_logins_token_grants_and_cases(app, client):
    before = _samples(client.get("/metrics"))
    login(client, password="wrong-password")
    login(client)
    rp = register_client(app)
    full_login(client, rp)
    client.post("/token", data={"grant_type": "authorization_code", "code": "nope",
                                "client_id": rp.client_id, "client_secret": rp.client_secret,
                                "redirect_uri": rp.redirect_uri})
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    after = _samples(response)

    def grew(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("dinhdanh_logins_total", outcome="failure") == 1
    assert grew("dinhdanh_logins_total", outcome="success") >= 1
    assert grew("dinhdanh_token_grants_total", grant_type="authorization_code",
                outcome="issued") == 1
    assert grew("dinhdanh_token_grants_total", grant_type="authorization_code",
                outcome="refused") == 1
    assert grew("dinhdanh_http_requests_total", method="POST", endpoint="oauth2.token",
                status="2xx") == 1
    assert any(name == "dinhdanh_http_request_duration_seconds_bucket" for name, _ in after)
    from ekyc.models import Case

    with app.app_context():
        db.session.add(Case(state="needs_review", token_hash="x" * 64, consent_version="v",
                            consent_text_hash="y" * 64))
        db.session.commit()
    assert _value(_samples(client.get("/metrics")), "dinhdanh_ekyc_cases",
                  state="needs_review") == 1


def test_metrics_want_the_token_when_one_is_set(make_app):
    app = make_app(METRICS_TOKEN="metrics-secret-token")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer metrics-secret-token"})
    assert ok.status_code == 200 and b"dinhdanh_http_requests_total" in ok.data


def test_readyz_says_ready_and_names_what_is_not(app, client, monkeypatch):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "signing_keys": "ok", "redis": "ok"}}

    def down():
        raise ConnectionError("redis is down")

    monkeypatch.setattr(app.extensions["kv"], "ping", down)
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["checks"]["redis"] == "unavailable (ConnectionError)"


@pytest.mark.parametrize("revision", ["7cc27e43a5df"])
def test_readyz_is_not_ready_on_an_old_schema(app, client, revision):
    with app.app_context():
        db.session.execute(db.text("UPDATE alembic_version SET version_num = :r"),
                           {"r": revision})
        db.session.commit()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"]["migrations"].startswith(f"at {revision}")
    finally:
        with app.app_context():
            db.session.execute(db.text("UPDATE alembic_version SET version_num = :r"),
                               {"r": "925a266315bd"})
            db.session.commit()
