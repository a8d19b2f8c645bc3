"""Citizen sign-in with a password: what the citizen and a guesser notice.

Throttling follows NIST SP 800-63B 5.2.2 (rate limiting) and RFC 6749 10.10 (credential
guessing): a temporary lockout per account after LOGIN_MAX_FAILURES, and a per-IP limit of
LOGIN_IP_MAX_FAILURES. Messages never reveal whether an ID number exists (OWASP account
enumeration). Pages are in Vietnamese by default, English after switching or with
`ui_locales=en` (OIDC Core 3.1.2.1).
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from tests.helpers import (
    CITIZEN_PASSWORD,
    CITIZEN_PID,
    authorize_params,
    csrf_token,
    login,
    query_of,
    register_client,
)

ROOT = Path(__file__).resolve().parents[3]
VI_CATALOGUE = ROOT / "idp" / "translations" / "vi" / "LC_MESSAGES" / "messages.mo"
needs_catalogue = pytest.mark.skipif(
    not VI_CATALOGUE.exists(),
    reason="Vietnamese catalogue not compiled yet (make translations): pages show English msgids")

WRONG = "Wrong-Password-9"
INVALID = "The ID number or password is not correct."
LOCKED = "Too many failed attempts. This account is locked for a while; try again later."
THROTTLED = "Too many failed attempts from this network. Try again later."


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _translated(app, msgid: str, locale: str) -> str:
    with app.test_request_context("/"):
        from flask_babel import force_locale, gettext

        with force_locale(locale):
            return gettext(msgid)


def _account_id(app, pid: str = CITIZEN_PID) -> str:
    with app.app_context():
        from idp.accounts.authn import find_account

        return find_account(pid).id


def _second_citizen(app, pid="079200000002", password="Second-Citizen-2", **fields):
    with app.app_context():
        from idp.cli import create_citizen

        create_citizen(pid, password, full_name="Trần Văn Bình", **fields)
    return pid, password


def _signed_in(client) -> bool:
    return client.get("/account").status_code == 200


def _english(client):
    client.get("/lang/en")
    return client


# -- signing in ---------------------------------------------------------------------------

def test_successful_login_sets_a_fresh_httponly_session_cookie(client):
    """OWASP session management: a new session id at login (no fixation), HttpOnly, SameSite."""
    client.set_cookie("idp_session", "attacker-chosen-value")
    response = login(client)
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    cookie = next(c for c in response.headers.getlist("Set-Cookie")
                  if c.startswith("idp_session="))
    assert "attacker-chosen-value" not in cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert _signed_in(client)


def test_wrong_password_and_unknown_id_look_the_same(app, client):
    """No account enumeration: same status and message for a wrong password and an unknown
    ID number."""
    _english(client)
    wrong = login(client, password=WRONG)
    unknown = login(client, pid="001199999999", password=WRONG)
    malformed = login(client, pid="12ab", password=WRONG)
    for response in (wrong, unknown, malformed):
        assert response.status_code == 401
        assert INVALID in _text(response)
        assert 'aria-invalid="true"' in response.text  # the field says what went wrong
    assert not _signed_in(client)


def test_id_number_may_be_typed_with_spaces(client):
    """People copy the 12 digits from their card with spaces; that is the same number."""
    response = login(client, pid="001 199 000 001")
    assert response.status_code == 302 and _signed_in(client)


def test_inactive_account_cannot_sign_in(app, client):
    """A locked account cannot sign in, even with the right password, and is told where to go."""
    pid, password = _second_citizen(app, status="locked")
    _english(client)
    response = login(client, pid=pid, password=password)
    assert response.status_code in (401, 403)
    assert "This account is locked. Ask at your commune police station." in _text(response)
    assert not _signed_in(client)


def test_login_hint_prefills_the_id_number(app, client):
    """OIDC Core 3.1.2.1 login_hint (conformance oidcc-login-hint)."""
    rp = register_client(app)
    response = client.get("/authorize", query_string=authorize_params(rp,
                                                                      login_hint=CITIZEN_PID))
    page = client.get(response.headers["Location"])
    assert f'value="{CITIZEN_PID}"' in page.text


# -- throttling -------------------------------------------------------------------------------

def test_account_locks_after_max_failures_even_for_the_right_password(make_app):
    """NIST SP 800-63B 5.2.2: LOGIN_MAX_FAILURES wrong passwords lock the account for a while."""
    app = make_app(LOGIN_MAX_FAILURES=3)
    client = _english(app.test_client())
    for _ in range(3):
        assert login(client, password=WRONG).status_code == 401
    locked = login(client)
    assert locked.status_code == 429
    assert LOCKED in _text(locked)
    assert not _signed_in(client)


def test_lockout_is_per_account_not_per_browser(make_app):
    """The lock follows the account: another network cannot continue guessing; another
    citizen is not affected."""
    app = make_app(LOGIN_MAX_FAILURES=3)
    for _ in range(3):
        login(app.test_client(), password=WRONG)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert login(elsewhere).status_code == 429
    pid, password = _second_citizen(app)
    assert login(app.test_client(), pid=pid, password=password).status_code == 302


def test_lockout_ends_after_its_duration(make_app):
    """LOGIN_LOCKOUT_SECONDS: the lock is temporary (expired here by removing its key)."""
    app = make_app(LOGIN_MAX_FAILURES=2)
    client = app.test_client()
    for _ in range(2):
        login(client, password=WRONG)
    assert login(client).status_code == 429
    with app.app_context():
        from idp import store

        ttl = store.kv().ttl(f"lock:{_account_id(app)}")
        assert 0 < ttl <= app.config["LOGIN_LOCKOUT_SECONDS"]
        store.kv().delete(f"lock:{_account_id(app)}")  # what Redis does when the TTL ends
    assert login(client).status_code == 302


def test_success_resets_the_failure_count(make_app):
    """Failures only count in a row: a citizen who mistypes now and then is never locked."""
    app = make_app(LOGIN_MAX_FAILURES=3)
    client = app.test_client()
    for _ in range(2):
        login(client, password=WRONG)
    assert login(client).status_code == 302
    other = app.test_client()
    for _ in range(2):
        assert login(other, password=WRONG).status_code == 401
    assert login(other).status_code == 302


def test_per_ip_throttle_across_many_id_numbers(make_app):
    """Password spraying: many ID numbers from one address trip LOGIN_IP_MAX_FAILURES; other
    addresses still sign in."""
    app = make_app(LOGIN_IP_MAX_FAILURES=4)
    attacker = _english(app.test_client())
    attacker.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    for n in range(4):
        assert login(attacker, pid=f"0011990000{n + 10}", password=WRONG).status_code == 401
    throttled = login(attacker)
    assert throttled.status_code == 429
    assert THROTTLED in _text(throttled)
    citizen = app.test_client()
    citizen.environ_base["REMOTE_ADDR"] = "192.0.2.44"
    assert login(citizen).status_code == 302


def test_failures_are_in_the_audit_log_without_secrets(app, client):
    """Security events are recorded (who, from where), never the password or ID number."""
    login(client, password=WRONG)
    with app.app_context():
        from idp.extensions import db
        from idp.models import AuditEvent

        rows = db.session.scalars(db.select(AuditEvent).filter_by(event="login.failure")).all()
        assert rows and rows[-1].account_id == _account_id(app)
        assert rows[-1].ip == "127.0.0.1"
        dumped = repr([(r.detail, r.user_agent) for r in rows])
        assert WRONG not in dumped and CITIZEN_PID not in dumped


# -- language ---------------------------------------------------------------------------------

def test_pages_are_vietnamese_by_default_and_english_after_switching(client):
    """DESIGN.md: Vietnamese first, English second; the choice sticks for the browser."""
    assert '<html lang="vi">' in client.get("/login").text
    switched = client.get("/lang/en", query_string={"next": "/login"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/login"
    assert '<html lang="en">' in client.get("/login").text
    client.get("/lang/vi")
    assert '<html lang="vi">' in client.get("/login").text


def test_unknown_language_is_ignored(client):
    client.get("/lang/fr")
    assert '<html lang="vi">' in client.get("/login").text


def test_ui_locales_from_the_portal_selects_english(app, client):
    """OIDC Core 3.1.2.1 ui_locales (conformance oidcc-ui-locales)."""
    rp = register_client(app)
    response = client.get("/authorize", query_string=authorize_params(rp, ui_locales="en-GB vi"))
    assert '<html lang="en">' in client.get(response.headers["Location"]).text


@needs_catalogue
def test_login_error_in_vietnamese_then_english(app, client):
    """The same failure reads in Vietnamese by default and in English after switching."""
    vietnamese = _translated(app, INVALID, "vi")
    assert vietnamese != INVALID, "the Vietnamese catalogue does not translate this message"
    response = login(client, password=WRONG)
    assert vietnamese in _text(response) and INVALID not in _text(response)
    _english(client)
    response = login(client, password=WRONG)
    assert INVALID in _text(response) and vietnamese not in _text(response)


@needs_catalogue
def test_lockout_message_in_vietnamese(make_app):
    app = make_app(LOGIN_MAX_FAILURES=1)
    client = app.test_client()
    login(client, password=WRONG)
    vietnamese = _translated(app, LOCKED, "vi")
    assert vietnamese != LOCKED
    assert vietnamese in _text(login(client))


def test_login_form_is_labelled_and_keeps_the_interaction(app, client):
    """The form a screen reader reads: labelled fields, autocomplete hints; and the
    interaction survives a failed attempt so the portal flow can still finish."""
    rp = register_client(app, first_party=True)
    response = client.get("/authorize", query_string=authorize_params(rp))
    interaction = query_of(response.headers["Location"])["interaction"]
    failed = login(client, password=WRONG, interaction=interaction)
    assert f'name="interaction" value="{interaction}"' in failed.text
    assert '<label for="national_id">' in failed.text and 'autocomplete="username"' in failed.text
    assert 'autocomplete="current-password"' in failed.text
    retry = client.post("/login", data={"csrf_token": csrf_token(failed.text),
                                        "interaction": interaction, "national_id": CITIZEN_PID,
                                        "password": CITIZEN_PASSWORD})
    assert retry.status_code == 302
    assert retry.headers["Location"].startswith("/authorize/resume?interaction=")
    done = client.get(retry.headers["Location"])
    assert done.headers["Location"].startswith(rp.redirect_uri + "?code=")
