"""Fault injection (register.faults) and the admin API that changes it at runtime."""

from __future__ import annotations

import time

import pytest

from register.models import AccessLog, UsedAssertion, db

from .conftest import ADMIN_TOKEN, assertion, bearer

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BODY = {"national_id": "001199000001"}


def verify(client, token=None):
    return client.post("/v1/citizens/verify", json=BODY, headers=bearer(token))


def test_outage_setting_makes_the_citizen_api_and_health_503(make_app):
    app = make_app(REGISTER_OUTAGE=True)
    client = app.test_client()
    resp = verify(client)
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "temporarily_unavailable"
    assert int(resp.headers["Retry-After"]) > 0
    assert client.get("/healthz").status_code == 503
    assert client.get("/v1/citizens/001199000001/portrait", headers=bearer()).status_code == 503
    # what the IdP needs to verify notifications, and the admin switch, keep working
    assert client.get("/jwks.json").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/v1/admin/faults", headers=ADMIN).get_json()["outage"] is True


def test_a_refused_call_does_not_burn_the_assertion(make_app):
    app = make_app(REGISTER_OUTAGE=True)
    client = app.test_client()
    token = assertion()
    assert verify(client, token).status_code == 503
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(UsedAssertion.jti_key))) == 0
        assert db.session.scalar(db.select(db.func.count(AccessLog.id))) == 0


def test_outage_switched_on_and_off_at_runtime(app, client):
    assert verify(client).status_code == 200
    resp = client.post("/v1/admin/faults", json={"outage": True}, headers=ADMIN)
    assert resp.status_code == 200
    assert resp.get_json() == {"latency_ms": 0, "error_rate": 0.0, "outage": True}
    assert verify(client).status_code == 503
    other_worker = app.test_client()  # same database row: every worker sees the change
    assert other_worker.get("/healthz").status_code == 503
    client.post("/v1/admin/faults", json={"outage": False}, headers=ADMIN)
    assert verify(client).status_code == 200


def test_runtime_change_is_shared_by_every_process(make_app):
    first, second = make_app(), make_app()
    first.test_client().post("/v1/admin/faults", json={"outage": True}, headers=ADMIN)
    assert second.test_client().get("/healthz").status_code == 503


@pytest.mark.parametrize("rate,expected", [(1.0, {503}), (0.0, {200})])
def test_error_rate_extremes(make_app, rate, expected):
    client = make_app(REGISTER_ERROR_RATE=rate).test_client()
    assert {verify(client).status_code for _ in range(20)} == expected


def test_error_rate_in_between_fails_some_calls(client):
    client.post("/v1/admin/faults", json={"error_rate": 0.5}, headers=ADMIN)
    codes = [verify(client).status_code for _ in range(80)]
    # P(all 80 alike) = 2 * 0.5^80: never in practice
    assert set(codes) == {200, 503}


def test_latency_is_a_lower_bound_on_the_answer_time(client):
    resp = client.post("/v1/admin/faults", json={"latency_ms": 300}, headers=ADMIN)
    assert resp.get_json()["latency_ms"] == 300
    started = time.monotonic()
    assert verify(client).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert client.get("/healthz").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_latency_from_settings(make_app):
    client = make_app(REGISTER_LATENCY_MS=200).test_client()
    started = time.monotonic()
    client.get("/healthz")
    assert time.monotonic() - started >= 0.2


def test_reset_returns_to_the_settings(make_app):
    client = make_app(REGISTER_ERROR_RATE=1.0).test_client()
    client.post("/v1/admin/faults", json={"error_rate": 0.0}, headers=ADMIN)
    assert verify(client).status_code == 200
    resp = client.post("/v1/admin/faults", json={"reset": True}, headers=ADMIN)
    assert resp.get_json()["error_rate"] == 1.0
    assert verify(client).status_code == 503


@pytest.mark.parametrize("body", [
    {}, {"latency_ms": -1}, {"latency_ms": 60_001}, {"latency_ms": "5"}, {"latency_ms": 1.5},
    {"error_rate": 1.5}, {"error_rate": True}, {"outage": "yes"}, {"reset": False},
    {"reset": True, "outage": True}, {"colour": "red"}, None,
])
def test_invalid_fault_changes_are_400_and_change_nothing(client, body):
    resp = client.post("/v1/admin/faults", json=body, headers=ADMIN)
    assert resp.status_code == 400
    assert client.get("/v1/admin/faults", headers=ADMIN).get_json() == \
        {"latency_ms": 0, "error_rate": 0.0, "outage": False}


def test_admin_api_needs_the_token(client):
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, bearer()):
        resp = client.post("/v1/admin/faults", json={"outage": True}, headers=headers)
        assert resp.status_code == 401
    assert verify(client).status_code == 200


def test_admin_api_absent_without_a_token(make_app):
    client = make_app(REGISTER_ADMIN_TOKEN="").test_client()
    resp = client.post("/v1/admin/faults", json={"outage": True}, headers=ADMIN)
    assert resp.status_code == 404
    resp = client.post("/v1/admin/citizens/001199000001/status", json={"status": "deceased"},
                       headers=ADMIN)
    assert resp.status_code == 404
    assert verify(client).get_json()["status"] == "alive"
