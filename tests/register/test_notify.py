"""Signed status notifications (SET, RFC 8417) and their outbox (register.notify)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from joserfc import jwt
from joserfc.jwk import KeySet

from register import notify
from register.models import AccessLog, OutboxMessage, RegisterKey, db, utcnow

from .conftest import ADMIN_TOKEN, BASE_URL, ISSUER

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEMO = "001199000001"


def set_status(client, status, national_id=DEMO):
    return client.post(f"/v1/admin/citizens/{national_id}/status", json={"status": status},
                       headers=ADMIN)


def outbox(app) -> list[OutboxMessage]:
    with app.app_context():
        return db.session.scalars(db.select(OutboxMessage).order_by(OutboxMessage.id)).all()


def deliver(app) -> dict:
    with app.app_context():
        return notify.deliver_due()


def test_status_change_queues_a_signed_set_verifiable_with_the_jwks(app, client):
    resp = set_status(client, "deceased")
    assert resp.status_code == 200
    answer = resp.get_json()
    assert answer["status"] == "deceased" and answer["changed"] is True
    [message] = outbox(app)
    assert message.jti == answer["notification_jti"] and message.delivered_at is None
    keyset = KeySet.import_key_set(client.get("/jwks.json").get_json())
    token = jwt.decode(message.token, keyset, algorithms=["ES256"])
    assert token.header["typ"] == "secevent+jwt" and token.header["alg"] == "ES256"
    assert token.header["kid"] == keyset.keys[0].kid
    claims = token.claims
    assert claims["iss"] == BASE_URL and claims["aud"] == ISSUER
    assert claims["jti"] == message.jti and abs(claims["iat"] - time.time()) < 60
    event = claims["events"]["urn:dinhdanh:register:status"]
    assert event["national_id"] == DEMO and event["status"] == "deceased"
    assert event["changed_at"].endswith("Z")


def test_jwks_publishes_no_private_key(client):
    jwks = client.get("/jwks.json").get_json()
    assert jwks["keys"] and all("d" not in key for key in jwks["keys"])
    assert all(key["kty"] == "EC" and key["alg"] == "ES256" for key in jwks["keys"])


def test_the_signing_key_is_created_once(make_app):
    first = make_app().test_client().get("/jwks.json").get_json()
    second_app = make_app()
    assert second_app.test_client().get("/jwks.json").get_json() == first
    with second_app.app_context():
        assert db.session.scalar(db.select(db.func.count(RegisterKey.kid))) == 1


def test_same_status_again_sends_nothing(app, client):
    set_status(client, "card_revoked")
    resp = set_status(client, "card_revoked")
    assert resp.get_json()["changed"] is False and resp.get_json()["notification_jti"] is None
    assert len(outbox(app)) == 1


def test_status_change_is_in_the_access_log_without_the_number(app, client):
    set_status(client, "deceased")
    with app.app_context():
        row = db.session.scalars(db.select(AccessLog)).one()
    assert (row.caller, row.endpoint, row.outcome) == ("admin", "admin_status", "status:deceased")
    assert DEMO not in (row.national_id_hash or "")


def test_status_change_rejects_bad_input(client):
    assert set_status(client, "missing").status_code == 400
    assert set_status(client, "deceased", "001199999999").status_code == 404
    assert set_status(client, "deceased", "abc").status_code == 400


def test_delivery_posts_the_set_and_stops_at_202(make_app, fake_server):
    receiver = fake_server(statuses=(202,))
    app = make_app(REGISTER_NOTIFY_URL=receiver.url + "/ekyc/register-events")
    set_status(app.test_client(), "deceased")
    assert deliver(app) == {"delivered": 1, "failed": 0, "pending": 0}
    [request] = receiver.received
    assert request["method"] == "POST" and request["path"] == "/ekyc/register-events"
    assert request["headers"]["Content-Type"] == "application/secevent+jwt"
    [message] = outbox(app)
    assert request["body"].decode() == message.token
    assert message.attempts == 1 and message.delivered_at is not None
    assert deliver(app)["delivered"] == 0 and len(receiver.received) == 1


def test_failed_delivery_backs_off_then_retries_until_accepted(make_app, fake_server):
    receiver = fake_server(statuses=(500, 503, 200))
    app = make_app(REGISTER_NOTIFY_URL=receiver.url, REGISTER_NOTIFY_BACKOFF_BASE=10)
    set_status(app.test_client(), "card_revoked")
    before = utcnow()
    assert deliver(app) == {"delivered": 0, "failed": 1, "pending": 1}
    [message] = outbox(app)
    assert message.attempts == 1 and message.last_error == "HTTP 500"
    assert message.next_attempt_at >= before + timedelta(seconds=10)
    assert deliver(app)["failed"] == 0 and len(receiver.received) == 1, "not due yet"

    def make_due():
        with app.app_context():
            db.session.execute(db.update(OutboxMessage).values(next_attempt_at=utcnow()))
            db.session.commit()

    make_due()
    before = utcnow()
    assert deliver(app)["failed"] == 1
    [message] = outbox(app)
    assert message.attempts == 2 and message.last_error == "HTTP 503"
    assert message.next_attempt_at >= before + timedelta(seconds=20), "the wait doubles"
    make_due()
    assert deliver(app) == {"delivered": 1, "failed": 0, "pending": 0}
    assert len(receiver.received) == 3
    sent = [json.loads(_payload(r["body"].decode())) for r in receiver.received]
    assert {claims["jti"] for claims in sent} == {message.jti}, "one event, one jti"
    assert len({json.dumps(claims["events"]) for claims in sent}) == 1


def test_each_attempt_is_signed_afresh(make_app, fake_server):
    receiver = fake_server(statuses=(202,))
    app = make_app(REGISTER_NOTIFY_URL=receiver.url)
    set_status(app.test_client(), "deceased")
    with app.app_context():  # what was signed at the change is not what gets sent later
        message = db.session.scalars(db.select(OutboxMessage)).one()
        message.token = "stale"
        db.session.commit()
    assert deliver(app)["delivered"] == 1
    claims = json.loads(_payload(receiver.received[0]["body"].decode()))
    assert abs(claims["iat"] - time.time()) < 60
    assert claims["events"]["urn:dinhdanh:register:status"]["status"] == "deceased"


def test_unreachable_receiver_keeps_the_message(make_app):
    app = make_app(REGISTER_NOTIFY_URL="http://127.0.0.1:9/events")
    set_status(app.test_client(), "deceased")
    assert deliver(app)["pending"] == 1
    [message] = outbox(app)
    assert message.attempts == 1 and message.last_error == "ConnectionError"


def test_back_off_is_capped(app):
    conf = {"REGISTER_NOTIFY_BACKOFF_BASE": 2, "REGISTER_NOTIFY_BACKOFF_MAX": 60}
    assert 2 <= notify.backoff_seconds(1, conf) <= 2.2
    assert 16 <= notify.backoff_seconds(4, conf) <= 17.6
    assert 60 <= notify.backoff_seconds(40, conf) <= 66


def test_background_thread_delivers_without_being_asked(make_app, fake_server):
    receiver = fake_server(statuses=(202,))
    app = make_app(REGISTER_NOTIFY_URL=receiver.url, REGISTER_OUTBOX_THREAD=True,
                   REGISTER_OUTBOX_INTERVAL=0.2)
    set_status(app.test_client(), "deceased")
    assert receiver.event.wait(15), "the outbox thread never delivered"
    claims = json.loads(_payload(receiver.received[0]["body"].decode()))
    assert claims["events"]["urn:dinhdanh:register:status"]["status"] == "deceased"


def _payload(token: str) -> bytes:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_cli_set_status_and_deliver(make_app, fake_server, monkeypatch, capsys):
    from register.__main__ import main

    from .conftest import base_config

    receiver = fake_server(statuses=(202,))
    app = make_app()  # resets the seed state
    for name, value in base_config(REGISTER_NOTIFY_URL=receiver.url).items():
        if name.startswith("REGISTER_") and name != "REGISTER_OUTBOX_THREAD":
            monkeypatch.setenv(name, str(value))
    assert main(["set-status", DEMO, "deceased"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["changed"] is True
    assert main(["deliver"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["delivered"] == 1
    assert len(receiver.received) == 1
    assert main(["set-status", "001199999999", "deceased"]) == 1
    assert len(outbox(app)) == 1
