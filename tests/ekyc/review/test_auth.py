"""Signing in to the operator console through the IdP (the console is an OIDC client of its
own, audience "staff", second factor required), the console session and its roles.

The sign-in runs the whole flow through the test client: /ops/login -> /authorize -> login with
the staff username and password -> TOTP code (computed with pyotp from the seed's documented
secret) -> /ops/callback, which redeems the code in-process and verifies the ID token.
"""

from __future__ import annotations

import html
import time
from urllib.parse import urlsplit

import pyotp
import pytest

from ekyc.review import auth
from idp.cli import DEMO_STAFF
from idp.extensions import db
from idp.models import Account, AuditEvent, Operator
from tests.conftest import ISSUER
from tests.ekyc.review.conftest import sign_in
from tests.helpers import (
    CITIZEN_PASSWORD,
    CITIZEN_PID,
    authorize_params,
    csrf_token,
    query_of,
    register_client,
)

OPERATOR = "ops-demo"


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _english(client) -> None:
    client.get("/lang/en")


def _local(location: str) -> str:
    """The path and query of a redirect target on the IdP (absolute or relative)."""
    parts = urlsplit(location)
    assert not parts.netloc or f"{parts.scheme}://{parts.netloc}" == ISSUER, location
    return parts.path + ("?" + parts.query if parts.query else "")


def _follow(client, response, stop=lambda path: False, hops: int = 12):
    """Follow redirects on the IdP until a page (or `stop(path)` says so)."""
    for _ in range(hops):
        if response.status_code not in (302, 303):
            return response
        path = _local(response.headers["Location"])
        if stop(path):
            return response
        response = client.get(path)
    raise AssertionError("too many redirects")


def _code(username: str, step_offset: int = 0) -> str:
    secret = DEMO_STAFF[username][2]
    return pyotp.TOTP(secret).at(time.time() + 30 * step_offset)


def _password_step(client, identifier: str, password: str):
    """From /ops/login to the IdP's login form, then submit it; returns the POST response."""
    page = _follow(client, client.get("/ops/login"))
    assert urlsplit(page.request.url).path == "/login", page.request.url
    interaction = query_of(page.request.url)["interaction"]
    return client.post("/login", data={"csrf_token": csrf_token(page.text),
                                       "interaction": interaction,
                                       "national_id": identifier, "password": password})


def _otp_step(client, code: str):
    page = client.get("/login/otp")
    return client.post("/login/otp", data={"csrf_token": csrf_token(page.text), "code": code})


def console_sign_in(client, username: str = OPERATOR, step_offset: int = 0):
    """The whole sign-in; returns (the callback's response, the callback path)."""
    response = _password_step(client, username, DEMO_STAFF[username][0])
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/otp")
    response = _otp_step(client, _code(username, step_offset))
    response = _follow(client, response, stop=lambda path: path.startswith("/ops/callback"))
    callback = _local(response.headers["Location"])
    assert callback.startswith("/ops/callback?")
    return client.get(callback), callback


def _console_session(client) -> dict | None:
    with client.session_transaction() as sess:
        return sess.get("ops")


def _events(app, name: str) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).filter_by(event=name)).all()
        db.session.expunge_all()
        return rows


# -- the sign-in -------------------------------------------------------------------------------

def test_demo_operator_signs_in_with_password_and_second_factor(app, client):
    _english(client)
    response, _callback = console_sign_in(client)
    assert response.status_code == 302
    assert not urlsplit(response.headers["Location"]).path.startswith("/ops/login")
    ops = _console_session(client)
    assert ops["username"] == OPERATOR and ops["role"] == "operator"
    with app.app_context():
        operator = db.session.scalar(db.select(Operator).filter_by(username=OPERATOR))
        assert ops["operator_id"] == operator.id and ops["account_id"] == operator.account_id
    assert ops["sid"]
    signins = _events(app, "ops.signin")
    assert [e.actor for e in signins] == [OPERATOR]
    # Signed in: the console's pages show who is signed in, with the role, and the sign-out.
    page = client.get("/ops/logout")
    assert page.status_code == 200
    assert "ops-demo" in _text(page) and "Operator" in _text(page)
    assert 'name="csrf_token"' in page.text


def test_the_console_asks_for_the_second_factor_and_level_2(app, client):
    """The authorization request carries acr_values for level 2 with a second factor, PKCE and
    max_age; the console client is first party (no consent screen) and for staff only."""
    response = client.get("/ops/login")
    query = query_of(response.headers["Location"])
    assert query["acr_values"] == "urn:dinhdanh:loa:2:mfa"
    assert query["code_challenge_method"] == "S256" and query["client_id"] == "ops-console"
    assert query["redirect_uri"] == ISSUER + "/ops/callback"
    assert query["max_age"] == str(app.config["OPS_IDLE_TIMEOUT"])
    with app.app_context():
        client_row = auth.ensure_client()
        assert client_row.audience == "staff" and client_row.first_party
        assert client_row.public_subject
        again = auth.ensure_client()  # idempotent
        assert again.client_id == "ops-console"


def test_supervisor_and_auditor_get_their_role(app, client):
    console_sign_in(client, "ops-supervisor")
    assert _console_session(client)["role"] == "supervisor"
    other = app.test_client()
    console_sign_in(other, "ops-auditor")
    assert _console_session(other)["role"] == "auditor"


def test_a_wrong_code_does_not_sign_in(app, client):
    _english(client)
    response = _password_step(client, OPERATOR, DEMO_STAFF[OPERATOR][0])
    assert response.headers["Location"].endswith("/login/otp")
    wrong = "000000" if _code(OPERATOR) != "000000" else "111111"
    response = _otp_step(client, wrong)
    assert response.status_code == 401
    assert "That code is not correct" in _text(response)
    assert _console_session(client) is None
    page = client.get("/ops/")
    assert "Sign in to the console" in _text(page)
    assert _events(app, "ops.signin") == []


def test_a_wrong_password_for_a_username_says_username(app, client):
    _english(client)
    response = _password_step(client, OPERATOR, "Not-The-Password-1")
    assert response.status_code == 401
    assert "The username or password is not correct." in _text(response)
    assert "Staff username" in _text(response)
    assert "Sign in with a passkey" not in _text(response)  # staff have none
    assert "No account yet?" not in _text(response)  # nor do they register through eKYC


def test_a_citizen_is_refused_at_the_console(app, client):
    _english(client)
    response = _password_step(client, CITIZEN_PID, CITIZEN_PASSWORD)
    response = _follow(client, response)
    assert response.status_code == 403
    assert "only for staff" in _text(response)
    assert "/ops/callback" not in response.request.url
    assert _console_session(client) is None
    assert _events(app, "authorize.audience_refused")
    # Back at the console, the citizen's SSO session does not count: the login page again.
    page = _follow(client, client.get("/ops/login"))
    assert urlsplit(page.request.url).path == "/login"
    assert "This service is for staff" in _text(page)


def test_a_staff_account_is_refused_at_a_citizen_portal(app, client):
    _english(client)
    rp = register_client(app, first_party=True)
    console_sign_in(client)  # an SSO session of a staff account
    # prompt=none: as if nobody were signed in.
    silent = client.get("/authorize", query_string=authorize_params(rp, prompt="none"))
    assert silent.status_code in (302, 303)
    assert silent.headers["Location"].startswith(rp.redirect_uri)
    assert query_of(silent.headers["Location"])["error"] == "login_required"
    # Interactive: the login page, saying a citizen account is needed.
    response = client.get("/authorize", query_string=authorize_params(rp))
    assert urlsplit(response.headers["Location"]).path == "/login"
    interaction = query_of(response.headers["Location"])["interaction"]
    page = client.get(_local(response.headers["Location"]))
    assert "This service is for citizens" in _text(page)
    # Signing in there with the staff account again: a clean 403, never a code.
    response = client.post("/login", data={"csrf_token": csrf_token(page.text),
                                           "interaction": interaction,
                                           "national_id": OPERATOR,
                                           "password": DEMO_STAFF[OPERATOR][0]})
    response = _otp_step(client, _code(OPERATOR, 1))
    response = _follow(client, response)
    assert response.status_code == 403
    assert "A staff account cannot sign in" in _text(response)
    assert rp.redirect_uri not in (response.headers.get("Location") or "")


def test_staff_without_a_role_is_refused(app, client):
    _english(client)
    with app.app_context():
        operator = db.session.scalar(db.select(Operator).filter_by(username=OPERATOR))
        operator.active = False
        db.session.commit()
    response, _callback = console_sign_in(client)
    assert response.status_code == 403
    assert "no role in the console" in _text(response)
    assert _console_session(client) is None
    refused = _events(app, "ops.signin_refused")
    assert [e.detail.get("reason") for e in refused] == ["no_role"]


def test_next_brings_the_user_back_and_foreign_targets_are_dropped(app, client):
    first = client.get("/ops/login", query_string={"next": "/ops/logout?x=1"})
    assert first.status_code == 302
    response, _ = console_sign_in(client)  # a second sign-in started; the first is pending
    assert response.status_code == 302
    for bad in ("https://evil.example/ops/", "//evil.example/ops/", "/account", "/ops\\..",
                "/ops/login?next=/ops/", "/ops/../account", None, ""):
        assert auth.safe_next(bad) is None, bad
    assert auth.safe_next("/ops/queue?reason=x") == "/ops/queue?reason=x"


def test_after_sign_in_next_is_followed(app, client):
    page = _follow(client, client.get("/ops/login", query_string={"next": "/ops/logout?x=1"}))
    interaction = query_of(page.request.url)["interaction"]
    response = client.post("/login", data={"csrf_token": csrf_token(page.text),
                                           "interaction": interaction, "national_id": OPERATOR,
                                           "password": DEMO_STAFF[OPERATOR][0]})
    response = _otp_step(client, _code(OPERATOR))
    response = _follow(client, response, stop=lambda path: path.startswith("/ops/callback"))
    response = client.get(_local(response.headers["Location"]))
    assert response.headers["Location"].endswith("/ops/logout?x=1")


# -- forged and replayed callbacks ------------------------------------------------------------

def test_forged_state_is_refused(app, client):
    _english(client)
    client.get("/ops/login")
    response = client.get("/ops/callback", query_string={"code": "abc", "state": "forged"})
    assert response.status_code == 400
    assert "was not started in this browser" in _text(response)
    assert _console_session(client) is None
    assert [e.detail["reason"] for e in _events(app, "ops.signin_refused")] == ["state"]


def test_forged_code_is_refused(app, client):
    _english(client)
    state = query_of(client.get("/ops/login").headers["Location"])["state"]
    response = client.get("/ops/callback", query_string={"code": "forged-code", "state": state})
    assert response.status_code == 400
    assert "could not be completed" in _text(response)
    assert _console_session(client) is None


def test_a_replayed_callback_is_refused(app, client):
    _english(client)
    response, callback = console_sign_in(client)
    assert response.status_code == 302
    with client.session_transaction() as sess:
        sess.pop("ops")
    # The same callback again: its state was used up.
    again = client.get(callback)
    assert again.status_code == 400 and _console_session(client) is None
    # The same code with a fresh state of this browser: the code was used up.
    state = query_of(client.get("/ops/login").headers["Location"])["state"]
    code = query_of(callback)["code"]
    again = client.get("/ops/callback", query_string={"code": code, "state": state})
    assert again.status_code == 400 and _console_session(client) is None


def test_an_error_from_the_idp_is_a_clean_page(app, client):
    _english(client)
    state = query_of(client.get("/ops/login").headers["Location"])["state"]
    response = client.get("/ops/callback", query_string={"error": "access_denied",
                                                         "state": state})
    assert response.status_code == 403
    assert "The sign-in was cancelled." in _text(response)


# -- the console session and roles ------------------------------------------------------------

@pytest.fixture
def guarded(make_app, staff):
    """An app with two extra console routes: any role, and supervisors only."""
    app = make_app()
    app.add_url_rule("/ops/_any", "ops_any", auth.require()(lambda: "any page"),
                     methods=["GET", "POST"])
    app.add_url_rule("/ops/_sup", "ops_sup", auth.require("supervisor")(lambda: "sup page"),
                     methods=["GET", "POST"])
    for endpoint, _label, _roles in auth.NAV:  # stand-ins for console pages not built yet
        if endpoint not in app.view_functions:
            path = "/ops/_" + endpoint.split(".")[1]
            app.add_url_rule(path, endpoint, auth.require()(lambda: "stand-in"))
    staff(app)
    return app


def _token(client) -> str:
    return csrf_token(client.get("/login").text)


def test_require_signed_out(guarded):
    client = guarded.test_client()
    _english(client)
    response = client.get("/ops/_sup?a=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/ops/login?next=/ops/_sup?a%3D1"
    response = client.post("/ops/_sup", data={"csrf_token": _token(client)})
    assert response.status_code == 401
    assert "Your console session has ended" in _text(response)


def test_require_roles(guarded):
    operator, supervisor = guarded.test_client(), guarded.test_client()
    _english(operator)
    sign_in(operator, guarded, "op1")
    sign_in(supervisor, guarded, "sup1")
    assert operator.get("/ops/_any").text == "any page"
    denied = operator.get("/ops/_sup")
    assert denied.status_code == 403 and "Your role does not allow this." in _text(denied)
    assert supervisor.get("/ops/_sup").text == "sup page"
    assert supervisor.post("/ops/_sup", data={"csrf_token": _token(supervisor)}).text == \
        "sup page"
    auditor = guarded.test_client()
    sign_in(auditor, guarded, "aud1")
    assert auditor.get("/ops/_sup").status_code == 403


def test_nav_shows_only_what_the_role_may_use(guarded):
    def links(username):
        client = guarded.test_client()
        sign_in(client, guarded, username)
        page = client.get("/ops/logout").text
        with guarded.test_request_context("/"):
            from flask import url_for

            return {e for e, _l, _r in auth.NAV if f'href="{url_for(e)}"' in page}, page

    shown, page = links("aud1")
    assert shown == {"ops.queue", "ops.overrides", "ops.accounts", "ops.dashboard",
                     "ops.audit_log"}
    assert 'href="/ops/logout"' in page and "aud1" in page
    shown, _page = links("op1")
    assert shown == {"ops.queue", "ops.overrides", "ops.counter", "ops.accounts",
                     "ops.dashboard"}
    shown, _page = links("sup1")
    assert shown == {e for e, _l, _r in auth.NAV}


def _age_session(client, **fields) -> None:
    with client.session_transaction() as sess:
        sess["ops"] = {**sess["ops"], **fields}


def test_idle_timeout_ends_the_console_session(guarded):
    client = guarded.test_client()
    sign_in(client, guarded, "op1")
    idle = guarded.config["OPS_IDLE_TIMEOUT"]
    _age_session(client, last_seen=int(time.time()) - idle + 60)
    assert client.get("/ops/_any").text == "any page"  # still inside the idle window
    _age_session(client, last_seen=int(time.time()) - idle - 1)
    response = client.get("/ops/_any")
    assert response.status_code == 302 and response.headers["Location"].startswith("/ops/login")
    assert _console_session(client) is None


def test_absolute_timeout_ends_the_console_session(guarded):
    client = guarded.test_client()
    sign_in(client, guarded, "op1")
    _age_session(client, auth_time=int(time.time()) - guarded.config["OPS_ABSOLUTE_TIMEOUT"] - 1)
    assert client.get("/ops/_any").status_code == 302
    assert _console_session(client) is None


def test_a_deactivated_operator_is_out_at_once(guarded):
    client = guarded.test_client()
    sign_in(client, guarded, "op1")
    assert client.get("/ops/_any").status_code == 200
    with guarded.app_context():
        account = db.session.scalar(db.select(Account).filter_by(username="op1"))
        account.status = "locked"
        db.session.commit()
    assert client.get("/ops/_any").status_code == 302


def test_actor_is_the_signed_in_username(guarded):
    client = guarded.test_client()
    sign_in(client, guarded, "sup1")
    with client.session_transaction() as sess:
        ops = dict(sess["ops"])
    with guarded.test_request_context("/ops/_any"):
        from flask import session

        session["ops"] = ops
        assert auth.actor() == "sup1"
        assert auth.current_operator().role == "supervisor"


# -- signing out -------------------------------------------------------------------------------

def test_sign_out_ends_the_console_and_the_sso_session(app, client):
    _english(client)
    console_sign_in(client)
    page = client.get("/ops/logout")
    response = client.post("/ops/logout", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 303
    assert _console_session(client) is None
    target = _local(response.headers["Location"])
    assert target.startswith("/logout?") and query_of(target)["id_token_hint"]
    response = client.get(target)  # the IdP ends the SSO session and comes back
    assert response.status_code == 303
    assert _local(response.headers["Location"]) == "/ops/?state=signed_out"
    landing = client.get("/ops/?state=signed_out")
    assert "You have signed out of the console." in _text(landing)
    assert [e.actor for e in _events(app, "ops.signout")] == [OPERATOR]
    # Nobody is signed in at the IdP any more: the console sign-in asks for the password.
    page = _follow(client, client.get("/ops/login"))
    assert urlsplit(page.request.url).path == "/login"


def test_sign_out_needs_the_form(app, client):
    console_sign_in(client)
    assert client.post("/ops/logout").status_code == 400  # no CSRF token
    assert _console_session(client) is not None
