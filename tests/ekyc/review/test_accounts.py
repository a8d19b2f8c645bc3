"""Account lifecycle in the console (ekyc/review/accounts.py): lookup by ID number with a
purpose, lock and unlock (sessions and refresh tokens end, the citizen cannot sign in), reset of
the authenticators after the in-person check, login history without secrets, auditors read
only."""

from __future__ import annotations

import pytest

from idp import crypto
from idp.extensions import db
from idp.models import Account, WebAuthnCredential
from tests.ekyc.review.conftest import audit_events as _events
from tests.ekyc.review.conftest import console_client as _console_client
from tests.helpers import (
    CITIZEN_PASSWORD,
    CITIZEN_PID,
    csrf_token,
    full_login,
    login,
    register_client,
)


@pytest.fixture
def console(app, staff):
    staff(app)
    return app


def _citizen(app) -> Account:
    with app.app_context():
        account = db.session.scalar(db.select(Account).filter_by(
            pid_hash=crypto.keyed_hash("pid", CITIZEN_PID)))
        db.session.expunge(account)
        return account


def _post(client, url, data=None, page_url=None):
    page = client.get(page_url or url)
    assert page.status_code == 200, page.text[:300]
    return client.post(url, data={"csrf_token": csrf_token(page.text), **(data or {})})


def _page(account_id: str, purpose: str = "citizen_request") -> str:
    return f"/ops/accounts/{account_id}?purpose={purpose}"


def _refresh(citizen, rp, refresh_token: str):
    return citizen.post("/token", data={"grant_type": "refresh_token",
                                        "refresh_token": refresh_token}, auth=rp.auth)


def test_lookup_needs_the_number_and_a_purpose_and_is_audited(console):
    app = console
    client = _console_client(app, "op1")
    assert _post(client, "/ops/accounts", {"number": "12345",
                                           "purpose": "counter"}).status_code == 400
    assert _post(client, "/ops/accounts", {"number": CITIZEN_PID}).status_code == 400
    assert _post(client, "/ops/accounts", {"number": "001199999999",
                                           "purpose": "counter"}).status_code == 404
    found = _post(client, "/ops/accounts", {"number": CITIZEN_PID, "purpose": "counter"})
    account = _citizen(app)
    assert found.status_code == 302
    assert found.headers["Location"].endswith(_page(account.id, "counter"))
    assert CITIZEN_PID not in found.headers["Location"]
    lookups = _events(app, "ops.account_lookup")
    assert [e.detail["found"] for e in lookups] == [False, True]
    assert all(CITIZEN_PID not in str(e.detail) for e in lookups)

    # Without a purpose the page asks for one first, and nothing is shown or logged.
    ask = client.get(f"/ops/accounts/{account.id}")
    assert ask.status_code == 200 and account.full_name not in ask.text
    assert 'name="purpose"' in ask.text and _events(app, "ops.account_viewed") == []
    page = client.get(_page(account.id, "counter"))
    assert account.full_name in page.text
    assert CITIZEN_PID not in page.text and CITIZEN_PID[-3:] in page.text  # last 3 digits
    [viewed] = _events(app, "ops.account_viewed")
    assert (viewed.actor, viewed.account_id, viewed.detail["purpose"]) == \
        ("op1", account.id, "counter")
    # Staff accounts are never reachable here.
    with app.app_context():
        staff_id = db.session.scalar(db.select(Account.id).filter_by(username="op2"))
    assert client.get(_page(staff_id)).status_code == 404


def test_lock_ends_sessions_and_refresh_tokens_and_unlock_restores(console):
    app = console
    rp = register_client(app)
    citizen = app.test_client()
    tokens = full_login(citizen, rp, scope="openid offline_access", prompt="consent")
    assert "refresh_token" in tokens
    assert citizen.get("/account").status_code == 200
    account = _citizen(app)

    client = _console_client(app, "op1")
    refused = _post(client, f"/ops/accounts/{account.id}/lock", {"note": "x"},
                    page_url=_page(account.id))
    assert refused.status_code == 400 and _citizen(app).status == "active"
    response = _post(client, f"/ops/accounts/{account.id}/lock",
                     {"reason": "reported_stolen", "note": "Phone stolen at the market",
                      "purpose": "citizen_request"}, page_url=_page(account.id))
    assert response.status_code == 200
    locked = _citizen(app)
    assert (locked.status, locked.status_reason) == ("locked", "reported_stolen")
    [event] = _events(app, "ops.account_locked")
    assert event.detail["reason_code"] == "reported_stolen" and event.actor == "op1"
    assert event.detail["sessions_ended"] == 1
    assert "market" not in str(event.detail)  # the note is kept encrypted only
    with app.app_context():
        assert crypto.decrypt(event.detail["note_encrypted"]) == "Phone stolen at the market"

    assert citizen.get("/account").status_code in (302, 303)  # the SSO session is gone
    assert _refresh(citizen, rp, tokens["refresh_token"]).status_code == 400
    assert login(app.test_client()).status_code != 302  # refused while locked
    assert _events(app, "login.account_locked")

    assert _post(client, f"/ops/accounts/{account.id}/unlock", {},
                 page_url=_page(account.id)).status_code == 400
    response = _post(client, f"/ops/accounts/{account.id}/unlock",
                     {"reason": "identity_confirmed"}, page_url=_page(account.id))
    assert response.status_code == 200
    assert _citizen(app).status == "active"
    assert _events(app, "ops.account_unlocked")[0].detail["reason_code"] == \
        "identity_confirmed"
    back = app.test_client()
    assert login(back).status_code == 302  # signed in again
    assert back.get("/account").status_code == 200


def test_reset_needs_the_in_person_confirmation_and_clears_every_factor(console):
    app = console
    account = _citizen(app)
    with app.app_context():
        row = db.session.get(Account, account.id)
        row.totp_secret_encrypted = crypto.encrypt("JBSWY3DPEHPK3PXPJBSWY3DP")
        db.session.add(WebAuthnCredential(account_id=account.id, credential_id="cred-1",
                                          public_key="key", name="phone"))
        db.session.commit()
    citizen = app.test_client()
    login(citizen)
    client = _console_client(app, "sup1")
    page = client.get(_page(account.id))
    assert "Passkeys: 1" in page.text and "JBSWY3DP" not in page.text
    refused = _post(client, f"/ops/accounts/{account.id}/reset", {},
                    page_url=_page(account.id))
    assert refused.status_code == 400
    assert _citizen(app).password_hash is not None
    response = _post(client, f"/ops/accounts/{account.id}/reset", {"in_person": "yes"},
                     page_url=_page(account.id))
    assert response.status_code == 200
    reset = _citizen(app)
    assert reset.password_hash is None and reset.totp_secret_encrypted is None
    assert reset.status == "pending_activation"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(WebAuthnCredential.id)).filter_by(
            account_id=account.id)) == 0
    [event] = _events(app, "ops.authenticators_reset")
    assert (event.detail["password"], event.detail["totp"], event.detail["passkeys"]) == \
        (True, True, 1)
    assert event.actor == "sup1"
    assert citizen.get("/account").status_code in (302, 303)
    assert login(app.test_client(), password=CITIZEN_PASSWORD).status_code != 302


def test_login_history_shows_logins_without_secrets(console):
    app = console
    login(app.test_client())
    login(app.test_client(), password="wrong-password-1")
    account = _citizen(app)
    client = _console_client(app, "aud1")
    assert client.get(f"/ops/accounts/{account.id}/history").status_code == 200  # asks purpose
    assert _events(app, "ops.login_history_viewed") == []
    page = client.get(f"/ops/accounts/{account.id}/history?purpose=audit")
    assert page.status_code == 200
    table = page.text[page.text.index('<table id="history"'):]
    assert "Signed in" in table and "Wrong password entered" in table
    assert table.index("Wrong password entered") < table.index("Signed in")  # newest first
    assert CITIZEN_PASSWORD not in page.text and "wrong-password-1" not in page.text
    assert CITIZEN_PID not in page.text
    [viewed] = _events(app, "ops.login_history_viewed")
    assert (viewed.actor, viewed.detail["purpose"]) == ("aud1", "audit")


def test_login_history_is_paginated(console):
    from idp import audit

    app = console
    account = _citizen(app)
    with app.app_context():
        for _ in range(30):
            audit.record("login.failure", account_id=account.id, commit=False)
        db.session.commit()
    client = _console_client(app, "op1")
    first = client.get(f"/ops/accounts/{account.id}/history?purpose=citizen_request")
    rows = first.text.count("<tr><td><time")
    assert rows == 25 and "Older" in first.text and "Newer" not in first.text
    second = client.get(f"/ops/accounts/{account.id}/history?purpose=citizen_request&page=2")
    assert 5 <= second.text.count("<tr><td><time") < 25 and "Newer" in second.text


def test_auditors_read_but_never_lock_unlock_or_reset(console):
    app = console
    account = _citizen(app)
    client = _console_client(app, "aud1")
    page = client.get(_page(account.id, "audit"))
    assert page.status_code == 200 and "/lock" not in page.text and "/reset" not in page.text
    token = csrf_token(client.get("/ops/accounts").text)
    for action, data in (("lock", {"reason": "fraud_suspected"}),
                         ("unlock", {"reason": "citizen_request"}),
                         ("reset", {"in_person": "yes"})):
        response = client.post(f"/ops/accounts/{account.id}/{action}",
                               data={"csrf_token": token, **data})
        assert response.status_code == 403
    after = _citizen(app)
    assert after.status == "active" and after.password_hash is not None
