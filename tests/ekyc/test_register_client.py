"""The register client (ekyc/register_client.py): signed client assertions, retries with
back-off, a circuit breaker shared through Redis, and errors sorted into "ask again later" and
definitive answers. Against the real register stub where it matters, and a scripted HTTP
server where a test needs exact failures."""

from __future__ import annotations

import json

import pytest
from joserfc import jwt

from ekyc import register_client
from ekyc.register_client import RegisterError, RegisterUnavailable
from idp import keys
from tests.conftest import ISSUER

VERIFY = "/v1/citizens/verify"
FOUND = {"found": True, "status": "alive", "fields": {"full_name": "match"},
         "has_portrait": False, "checked_at": "2026-11-23T10:00:00Z"}


def _fields(citizen) -> dict:
    return {"full_name": citizen.full_name, "date_of_birth": citizen.date_of_birth.isoformat(),
            "sex": citizen.sex, "residence": citizen.residence,
            "card_issue_date": citizen.card_issue_date.isoformat()}


def test_verify_against_the_register_stub(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    stub = register_stub(app)
    citizen = citizens[1]
    with app.app_context():
        answer = register_client.verify(citizen.national_id, _fields(citizen))
        assert answer.found and answer.status == citizen.status
        assert set(answer.fields.values()) == {"match"} and len(answer.fields) == 5
        wrong = register_client.verify(citizen.national_id,
                                       {**_fields(citizen), "full_name": "Trần Văn Khác"})
        assert wrong.fields["full_name"] == "mismatch"
        unknown = register_client.verify("001099999999", {})
        assert not unknown.found
    # The register logged every call with the purpose our assertion carried.
    assert [row.purpose for row in stub.access_log()][-3:] == ["ekyc-onboarding"] * 3


def test_portrait_and_jwks_from_the_register_stub(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    register_stub(app)
    with app.app_context():
        with_portrait = [c for c in citizens if c.portrait_file]
        if with_portrait:
            image = register_client.portrait(with_portrait[0].national_id)
            assert image is not None and image[:3] == b"\xff\xd8\xff"
        assert register_client.portrait("001099999999") is None
        published = register_client.jwks()
        assert published["keys"] and published["keys"][0]["kty"] == "EC"


def test_client_assertion_claims(ekyc_app):
    app = ekyc_app(REGISTER_URL="http://register.internal:8100")
    with app.app_context():
        first = register_client.client_assertion("ekyc-onboarding")
        second = register_client.client_assertion("ekyc-onboarding")
        token = keys.verify(first)  # signed with one of our published keys
    header, claims = token.header, token.claims
    assert header["alg"] == "ES256" and header["kid"].startswith("es256-")
    assert claims["iss"] == ISSUER and claims["sub"] == "dinhdanh-idp"
    assert claims["aud"] == "http://register.internal:8100"
    assert claims["purpose"] == "ekyc-onboarding"
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert claims["jti"] != jwt.decode(second, _public(app)).claims["jti"]


def _public(app):
    from joserfc.jwk import KeySet

    with app.app_context():
        return KeySet.import_key_set(keys.jwks())


def test_a_failed_attempt_is_retried(ekyc_app, rp_server):
    app = ekyc_app(REGISTER_RETRIES=2)
    rp_server.serve(VERIFY, FOUND)
    rp_server.fail_next(VERIFY, times=2, status=503)
    app.config["REGISTER_URL"] = rp_server.url("")
    with app.app_context():
        assert register_client.verify("001199000001", {}).found
    assert len(rp_server.received(VERIFY, "POST")) == 3
    bodies = [json.loads(r.body) for r in rp_server.received(VERIFY)]
    tokens = [r.headers["Authorization"].split()[1] for r in rp_server.received(VERIFY)]
    assert len(set(tokens)) == 3  # a fresh single-use assertion per attempt
    assert bodies[0]["purpose"] == "ekyc-onboarding"


def test_retries_back_off_exponentially_with_jitter(ekyc_app, rp_server):
    app = ekyc_app(REGISTER_RETRIES=3, REGISTER_RETRY_BACKOFF=0.5)
    rp_server.serve(VERIFY, FOUND, status=503)
    app.config["REGISTER_URL"] = rp_server.url("")
    slept = []
    with app.app_context(), pytest.raises(RegisterUnavailable):
        register_client.call("POST", VERIFY, "p", payload={}, sleep=slept.append)
    assert len(slept) == 3
    for attempt, delay in enumerate(slept):
        cap = 0.5 * 2 ** attempt
        assert cap / 2 <= delay <= cap


def test_breaker_opens_after_consecutive_failures_and_fails_fast(ekyc_app, rp_server):
    app = ekyc_app(REGISTER_RETRIES=0, REGISTER_BREAKER_FAILURES=3,
                   REGISTER_BREAKER_COOLDOWN=30)
    rp_server.serve(VERIFY, FOUND, status=503)
    app.config["REGISTER_URL"] = rp_server.url("")
    now = [1_000_000.0]
    app.extensions["ekyc.clock"] = lambda: now[0]
    with app.app_context():
        for _ in range(3):
            with pytest.raises(RegisterUnavailable):
                register_client.verify("001199000001", {})
        assert register_client.breaker().state() == "open"
        with pytest.raises(RegisterUnavailable, match="open"):
            register_client.verify("001199000001", {})
        assert len(rp_server.received(VERIFY)) == 3  # the open breaker sent nothing

        # After the cool-down one probe goes through; it fails: open again.
        now[0] += 31
        assert register_client.breaker().state() == "half-open"
        with pytest.raises(RegisterUnavailable):
            register_client.verify("001199000001", {})
        assert len(rp_server.received(VERIFY)) == 4
        assert register_client.breaker().state() == "open"

        # The register recovers; after the next cool-down the probe succeeds and closes it.
        rp_server.serve(VERIFY, FOUND)
        now[0] += 31
        assert register_client.verify("001199000001", {}).found
        assert register_client.breaker().state() == "closed"
        assert register_client.verify("001199000001", {}).found
    assert len(rp_server.received(VERIFY)) == 6


def test_breaker_state_is_shared_by_every_process(ekyc_app, make_app, rp_server):
    """State lives in Redis: another app (another web or worker process) sees it open."""
    app = ekyc_app(REGISTER_RETRIES=0, REGISTER_BREAKER_FAILURES=2)
    rp_server.serve(VERIFY, FOUND, status=500)
    app.config["REGISTER_URL"] = rp_server.url("")
    with app.app_context():
        for _ in range(2):
            with pytest.raises(RegisterUnavailable):
                register_client.verify("001199000001", {})
    other = make_app(REGISTER_BREAKER_FAILURES=2, REGISTER_URL=rp_server.url(""))
    with other.app_context():
        assert register_client.breaker().state() == "open"
        with pytest.raises(RegisterUnavailable):
            register_client.verify("001199000001", {})
    assert len(rp_server.received(VERIFY)) == 2


def test_a_success_resets_the_failure_count(ekyc_app, rp_server):
    app = ekyc_app(REGISTER_RETRIES=0, REGISTER_BREAKER_FAILURES=2)
    rp_server.serve(VERIFY, FOUND)
    app.config["REGISTER_URL"] = rp_server.url("")
    with app.app_context():
        for _ in range(3):  # fail, succeed, fail: never two in a row
            rp_server.fail_next(VERIFY, 1, 503)
            with pytest.raises(RegisterUnavailable):
                register_client.verify("001199000001", {})
            assert register_client.verify("001199000001", {}).found
        assert register_client.breaker().state() == "closed"


def test_bad_request_is_a_definitive_answer_not_an_outage(ekyc_app, rp_server):
    app = ekyc_app(REGISTER_RETRIES=2, REGISTER_BREAKER_FAILURES=1)
    rp_server.serve(VERIFY, {"error": "invalid_request", "error_description": "bad"},
                    status=400)
    app.config["REGISTER_URL"] = rp_server.url("")
    with app.app_context():
        with pytest.raises(RegisterError) as info:
            register_client.verify("001199000001", {})
        assert info.value.code == "invalid_request"
        assert register_client.breaker().state() == "closed"
    assert len(rp_server.received(VERIFY)) == 1  # not retried


def test_refused_credentials_mean_wait_and_are_not_retried_now(ekyc_app, rp_server, caplog):
    app = ekyc_app(REGISTER_RETRIES=2)
    rp_server.serve(VERIFY, {"error": "invalid_client"}, status=401)
    app.config["REGISTER_URL"] = rp_server.url("")
    with app.app_context(), pytest.raises(RegisterUnavailable, match="authentication"):
        register_client.verify("001199000001", {})
    assert len(rp_server.received(VERIFY)) == 1
    assert "refused our client assertion" in caplog.text


def test_a_stopped_register_is_unavailable(ekyc_app, register_stub):
    app = ekyc_app(REGISTER_RETRIES=1)
    stub = register_stub(app)
    stub.stop()
    with app.app_context(), pytest.raises(RegisterUnavailable, match="ConnectionError"):
        register_client.verify("001199000001", {})


def test_an_oversized_answer_is_not_read(ekyc_app, rp_server):
    app = ekyc_app(REGISTER_RETRIES=0, REGISTER_MAX_BYTES=1024)
    rp_server.serve(VERIFY, {**FOUND, "padding": "x" * 5000})
    app.config["REGISTER_URL"] = rp_server.url("")
    with app.app_context(), pytest.raises(RegisterUnavailable, match="too large"):
        register_client.verify("001199000001", {})


def test_a_slow_register_times_out(ekyc_app, rp_server):
    app = ekyc_app(REGISTER_RETRIES=0, REGISTER_TIMEOUT=0.2)
    rp_server.serve(VERIFY, FOUND, delay=2)
    app.config["REGISTER_URL"] = rp_server.url("")
    with app.app_context(), pytest.raises(RegisterUnavailable, match="Timeout"):
        register_client.verify("001199000001", {})


def test_the_id_number_never_reaches_the_log(ekyc_app, rp_server, caplog):
    app = ekyc_app(REGISTER_RETRIES=0)
    rp_server.serve("/v1/citizens/079284000321/portrait", "", status=503)
    app.config["REGISTER_URL"] = rp_server.url("")
    with app.app_context(), pytest.raises(RegisterUnavailable):
        register_client.portrait("079284000321")
    assert "079284000321" not in caplog.text and "register portrait unavailable" in caplog.text
