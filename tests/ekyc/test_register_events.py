"""Status notifications from the register (ekyc/register_events.py): a death or a card
revocation locks the account, ends its sessions everywhere and revokes its tokens; forged,
stale, misaddressed and replayed notifications change nothing."""

from __future__ import annotations

import json
import secrets
import threading
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from werkzeug.serving import make_server

from idp import sessions
from idp.cli import create_citizen
from idp.extensions import db
from idp.models import Account, AuditEvent, RefreshToken
from tests.conftest import ISSUER
from tests.helpers import csrf_token, full_login, login, register_client

EVENT = "urn:dinhdanh:register:status"
PASSWORD = "Citizen-Pass-123"


def _citizen(app, citizen) -> str:
    with app.app_context():
        account = create_citizen(citizen.national_id, PASSWORD, full_name=citizen.full_name,
                                 level=1)
        return account.id


def _signed(stub, **claims) -> str:
    """A SET signed with the register's own key (claims override the genuine ones)."""
    from register import keys

    body = {"iss": stub.url, "aud": ISSUER, "iat": int(time.time()),
            "jti": secrets.token_urlsafe(12),
            "events": {EVENT: {"national_id": claims.pop("national_id"),
                               "status": claims.pop("status", "deceased"),
                               "changed_at": "2026-11-23T10:00:00Z"}}}
    body.update(claims)
    with stub.app.app_context():
        return keys.sign({k: v for k, v in body.items() if v is not None}, "secevent+jwt")


def _post(client, token: str, content_type="application/secevent+jwt"):
    return client.post("/ekyc/register-events", data=token, content_type=content_type)


def _audits(app, event: str) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).filter_by(event=event)).all()
        db.session.expunge_all()
        return rows


def _status(app, account_id) -> tuple[str, str | None]:
    with app.app_context():
        account = db.session.get(Account, account_id)
        return account.status, account.status_reason


class IdpServer:
    """The IdP app served over HTTP on a free port, as the register's outbox reaches it."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_a_death_in_the_register_locks_the_account_everywhere(ekyc_app, register_stub,
                                                              citizens, rp_server):
    app = ekyc_app()
    citizen = citizens[1]
    account_id = _citizen(app, citizen)
    portal = register_client(app, first_party=True,
                             backchannel_logout_uri=rp_server.serve("/bc", "", status=200))
    browser = app.test_client()
    page = login(browser, pid=citizen.national_id, password=PASSWORD)
    assert page.status_code == 302
    tokens = full_login(browser, portal, scope="openid offline_access")
    assert tokens.get("refresh_token")
    with app.app_context():
        assert len(sessions.for_account(account_id)) == 1

    with IdpServer(app) as idp:
        stub = register_stub(app, REGISTER_NOTIFY_URL=f"{idp.url}/ekyc/register-events")
        assert stub.set_status(citizen.national_id, "deceased")["changed"]
        from register import notify

        with stub.app.app_context():
            delivered = notify.deliver_due()  # the register's outbox pushes the signed SET
        assert delivered["delivered"] == 1 and delivered["pending"] == 0

    assert _status(app, account_id) == ("locked", "deceased")
    with app.app_context():
        assert sessions.for_account(account_id) == []
        assert all(row.revoked_at is not None for row in db.session.scalars(
            db.select(RefreshToken).filter_by(account_id=account_id)))
    [locked] = _audits(app, "account_locked_register")
    assert locked.account_id == account_id and locked.detail["status"] == "deceased"
    assert locked.detail["sessions_ended"] == 1
    assert citizen.national_id not in json.dumps(locked.detail)
    # The portal was told by back-channel logout (OIDC Back-Channel Logout 1.0).
    [notice] = rp_server.received("/bc", "POST")
    assert "logout_token" in notice.form
    # The refresh token no longer works, and the citizen cannot sign in again.
    response = browser.post("/token", data={"grant_type": "refresh_token",
                                            "refresh_token": tokens["refresh_token"]},
                            auth=portal.auth)
    assert response.status_code == 400 and response.json["error"] == "invalid_grant"
    fresh = app.test_client()
    response = fresh.post("/login", data={"csrf_token": csrf_token(fresh.get("/login").text),
                                          "national_id": citizen.national_id,
                                          "password": PASSWORD})
    assert response.status_code == 401


def test_a_replayed_set_changes_nothing_again(ekyc_app, register_stub, citizens):
    app = ekyc_app(REGISTER_JWKS="")
    stub = register_stub(app)
    account_id = _citizen(app, citizens[2])
    token = _signed(stub, national_id=citizens[2].national_id, status="card_revoked")
    client = app.test_client()
    assert _post(client, token).status_code == 202
    assert _status(app, account_id) == ("locked", "card_revoked")
    with app.app_context():  # an officer unlocks the account after checking
        db.session.get(Account, account_id).status = "active"
        db.session.commit()
    replay = _post(client, token)
    assert replay.status_code == 202  # the register's retries must stop, but...
    assert _status(app, account_id) == ("active", "card_revoked")  # ...nothing was done again
    assert len(_audits(app, "account_locked_register")) == 1
    assert len(_audits(app, "register_event.duplicate")) == 1


def _other_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256"})


@pytest.mark.parametrize("forgery, err", [
    ("foreign_key_same_kid", "authentication_failed"),
    ("unknown_kid", "invalid_key"),
    ("alg_none", "invalid_request"),
    ("wrong_typ", "invalid_request"),
    ("wrong_issuer", "invalid_issuer"),
    ("wrong_audience", "invalid_audience"),
    ("stale", "invalid_request"),
    ("future", "invalid_request"),
    ("no_jti", "invalid_request"),
    ("bad_event", "invalid_request"),
    ("tampered", "authentication_failed"),
])
def test_forged_or_stale_notifications_are_refused(ekyc_app, register_stub, citizens, forgery,
                                                    err):
    app = ekyc_app()
    stub = register_stub(app)
    with stub.app.app_context():
        from register import keys as register_keys

        stub_jwks = register_keys.jwks()
    app.config["REGISTER_JWKS"] = json.dumps(stub_jwks)  # inline keys, as tests may do
    account_id = _citizen(app, citizens[3])
    number = citizens[3].national_id
    kid = stub_jwks["keys"][0]["kid"]
    claims = {"iss": stub.url, "aud": ISSUER, "iat": int(time.time()), "jti": "j-1",
              "events": {EVENT: {"national_id": number, "status": "deceased",
                                 "changed_at": "2026-11-23T10:00:00Z"}}}
    header = {"alg": "ES256", "kid": kid, "typ": "secevent+jwt"}
    if forgery in ("foreign_key_same_kid", "unknown_kid"):
        key = _other_key(kid if forgery == "foreign_key_same_kid" else "someone-else")
        token = jwt.encode({**header, "kid": key.kid}, claims, key, algorithms=["ES256"])
    elif forgery == "alg_none":
        import base64

        def b64(data):
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
        token = f"{b64({'alg': 'none', 'typ': 'secevent+jwt', 'kid': kid})}.{b64(claims)}."
    elif forgery == "wrong_typ":
        from register import keys as register_keys

        with stub.app.app_context():
            token = register_keys.sign(claims, "JWT")
    elif forgery == "tampered":
        good = _signed(stub, national_id=citizens[4].national_id)
        head, _body, sig = good.split(".")
        import base64

        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        token = f"{head}.{body}.{sig}"
    else:
        changes = {"wrong_issuer": {"iss": "http://evil.example"},
                   "wrong_audience": {"aud": "http://another-idp.example"},
                   "stale": {"iat": int(time.time()) - 3600},
                   "future": {"iat": int(time.time()) + 3600},
                   "no_jti": {"jti": None},
                   "bad_event": {"events": {EVENT: {"national_id": number,
                                                    "status": "on_holiday"}}}}[forgery]
        token = _signed(stub, national_id=number, **changes)
    response = _post(app.test_client(), token)
    assert response.status_code == 400
    assert response.json["err"] == err and response.json["error"] == err
    assert _status(app, account_id) == ("active", None)
    assert _audits(app, "account_locked_register") == []
    assert _audits(app, "register_event.refused")[0].detail["err"] == err


def test_only_secevent_jwt_bodies_are_accepted(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    stub = register_stub(app)
    token = _signed(stub, national_id=citizens[1].national_id)
    response = _post(app.test_client(), token, content_type="application/json")
    assert response.status_code == 400 and response.json["err"] == "invalid_request"
    response = _post(app.test_client(), "x" * 20_000)
    assert response.status_code == 400


def test_alive_and_unknown_numbers_change_no_account(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    stub = register_stub(app)
    account_id = _citizen(app, citizens[5])
    client = app.test_client()
    assert _post(client, _signed(stub, national_id=citizens[5].national_id,
                                 status="alive")).status_code == 202
    assert _post(client, _signed(stub, national_id="001099999999")).status_code == 202
    assert _status(app, account_id) == ("active", None)
    assert len(_audits(app, "register_status_alive")) == 1


def test_register_keys_unreachable_means_refused_not_accepted(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    stub = register_stub(app)
    account_id = _citizen(app, citizens[1])
    token = _signed(stub, national_id=citizens[1].national_id)
    stub.stop()  # the JWKS cannot be fetched
    response = _post(app.test_client(), token)
    assert response.status_code == 400 and response.json["err"] == "invalid_key"
    assert _status(app, account_id) == ("active", None)
