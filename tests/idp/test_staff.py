"""Staff accounts (idp/staff.py): the demo seed's console users, `flask ops create-staff`, and
signing in with a username on the shared login form."""

from __future__ import annotations

import html
import re

import pyotp
import pytest

from idp import crypto, staff
from idp.accounts.passwords import verify_password
from idp.cli import DEMO_STAFF, seed_demo
from idp.extensions import db
from idp.models import Account, Operator
from tests.helpers import csrf_token


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_seed_creates_the_demo_staff_with_their_documented_secrets(app):
    with app.app_context():
        for username, (password, role, secret) in DEMO_STAFF.items():
            account = staff.find_staff(username)
            assert account is not None and account.kind == "staff" and account.level == 2
            assert account.active and account.pid_hash is None
            assert verify_password(account.password_hash, password)
            assert crypto.decrypt(account.totp_secret_encrypted) == secret
            assert len(secret) == 32 and pyotp.TOTP(secret).now().isdigit()
            operator = db.session.scalar(db.select(Operator).filter_by(username=username))
            assert operator.account_id == account.id and operator.role == role
            assert operator.active
        assert len({secret for _p, _r, secret in DEMO_STAFF.values()}) == 3


def test_seed_is_idempotent_and_upgrades_an_old_operator_row(app):
    with app.app_context():
        # As before staff accounts existed: an operators row without an account.
        account = staff.find_staff("ops-demo")
        db.session.execute(db.delete(Operator).filter_by(username="ops-demo"))
        db.session.delete(account)
        db.session.commit()
        db.session.add(Operator(username="ops-demo", password_hash="old", role="operator"))
        db.session.commit()
        assert seed_demo() == ["operator ops-demo"]
        assert seed_demo() == []
        rows = db.session.scalars(db.select(Operator).filter_by(username="ops-demo")).all()
        assert len(rows) == 1 and rows[0].account_id == staff.find_staff("ops-demo").id
        assert rows[0].password_hash is None
        assert db.session.scalar(db.select(db.func.count()).select_from(Account)
                                 .filter_by(kind="staff")) == 3


def test_seed_is_refused_in_production(app):
    app.config["IDP_ENV"] = "production"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed"])
    assert result.exit_code != 0 and "refused in production" in result.output


@pytest.mark.parametrize("username, role, province, password, problem", [
    ("ab", "operator", None, "Strong-Pass-1", "username"),
    ("123456789012", "operator", None, "Strong-Pass-1", "username"),
    ("has space", "operator", None, "Strong-Pass-1", "username"),
    ("nguyen.van.a", "boss", None, "Strong-Pass-1", "role"),
    ("nguyen.van.a", "operator", "1", "Strong-Pass-1", "province"),
    ("nguyen.van.a", "operator", None, "short", "password"),
    ("OPS-DEMO", "operator", None, "Strong-Pass-1", "already exists"),
])
def test_create_staff_refuses_bad_input(app, username, role, province, password, problem):
    with app.app_context(), pytest.raises(staff.StaffError, match=problem):
        staff.create_staff(username, password, role, province=province)


def test_create_staff_command_and_username_login(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ops", "create-staff", "Tran.Thi.B", "--role", "supervisor",
                                 "--province", "079"],
                           input="Counter-Pass-22\nCounter-Pass-22\n")
    assert result.exit_code == 0, result.output
    assert "created supervisor tran.thi.b" in result.output
    uri = re.search(r"otpauth://\S+", result.output).group(0)
    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    with app.app_context():
        operator = db.session.scalar(db.select(Operator).filter_by(username="tran.thi.b"))
        assert operator.role == "supervisor" and operator.province == "079"
        account = db.session.get(Account, operator.account_id)
        assert crypto.decrypt(account.totp_secret_encrypted) == secret
    again = runner.invoke(args=["ops", "create-staff", "tran.thi.b", "--role", "operator"],
                          input="Counter-Pass-22\nCounter-Pass-22\n")
    assert again.exit_code != 0 and "already exists" in again.output
    # The username signs in on the shared form, any case, then asks for the second factor.
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": csrf_token(page.text),
                                           "national_id": " Tran.Thi.B ",
                                           "password": "Counter-Pass-22"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/otp")
    otp = client.get("/login/otp")
    response = client.post("/login/otp", data={"csrf_token": csrf_token(otp.text),
                                               "code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    # A staff member signed in without a portal goes to the console, not the citizen's page.
    assert client.get("/account").headers["Location"] == "/ops/"


def test_login_form_keeps_the_citizen_label_and_hints_staff(app):
    client = app.test_client()
    client.get("/lang/en")
    page = _text(client.get("/login"))
    assert "Personal ID number (12 digits)" in page
    assert "Console staff: enter your staff username instead." in page


def test_wrong_staff_password_looks_like_any_wrong_password(app):
    client = app.test_client()
    client.get("/lang/en")
    statuses = []
    for identifier in ("ops-demo", "no-such-user"):
        page = client.get("/login")
        response = client.post("/login", data={"csrf_token": csrf_token(page.text),
                                               "national_id": identifier,
                                               "password": "Wrong-Password-9"})
        statuses.append((response.status_code,
                         "The ID number or password is not correct." in _text(response)))
    assert statuses == [(401, True), (401, True)]


def test_a_disabled_staff_account_is_told_to_ask_a_supervisor(app):
    with app.app_context():
        account = staff.find_staff("ops-auditor")
        account.status = "locked"
        db.session.commit()
    client = app.test_client()
    client.get("/lang/en")
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": csrf_token(page.text),
                                           "national_id": "ops-auditor",
                                           "password": DEMO_STAFF["ops-auditor"][0]})
    assert response.status_code == 401
    assert "This staff account is disabled. Ask your supervisor." in _text(response)
