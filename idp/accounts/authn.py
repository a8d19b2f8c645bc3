"""Authentication steps: password, TOTP second factor, passkeys; and finishing a login."""

from __future__ import annotations

import time

import pyotp
from flask import session
from flask_babel import lazy_gettext as _l

from .. import audit, crypto, sessions, staff
from ..extensions import db
from ..models import ACCOUNT_LOCKED, ACCOUNT_PENDING_ACTIVATION, Account
from ..oauth2.scopes import acr_for
from . import throttle
from .passwords import hash_password, needs_rehash, verify_password

TOTP_ISSUER = "DinhDanh"
PENDING_TTL = 300  # seconds between the password and the second factor


class LoginFailed(Exception):
    """`code` says what the page should tell the user (no account enumeration); `message`,
    when set, is a more specific translated text for that code."""

    def __init__(self, code: str, retry_after: int = 0, message=None):
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after
        self.message = message


# Why an account that is not active cannot sign in. Said only after the password matched, so
# nobody learns an account's state from its ID number alone.
INACTIVE_MESSAGES = {
    ACCOUNT_PENDING_ACTIVATION: _l("This account is not activated yet. Open your registration "
                                   "and set your password and second factor first."),
    ACCOUNT_LOCKED: _l("This account is locked. Ask at your commune police station."),
}
# The same for a staff account (console users): their administrator, not the police station.
STAFF_INACTIVE_MESSAGE = _l("This staff account is disabled. Ask your supervisor.")


def normalise_pid(raw: str) -> str:
    return "".join(ch for ch in (raw or "") if ch.isdigit())


def normalise_identifier(raw: str) -> str:
    """What the login form's identifier field means: a staff username (lower case) when it
    reads as one, else the digits of an ID number."""
    return staff.normalise_username(raw) if staff.looks_like_username(raw) else normalise_pid(raw)


def find_account(pid: str) -> Account | None:
    if len(pid) != 12:
        return None
    return db.session.scalar(db.select(Account).filter_by(pid_hash=crypto.keyed_hash("pid", pid)))


def find_by_identifier(raw: str) -> Account | None:
    """The account a login names: a citizen by ID number or a staff member by username."""
    if staff.looks_like_username(raw):
        return staff.find_staff(raw)
    return find_account(normalise_pid(raw))


def check_password(pid_raw: str, password: str) -> Account:
    """`pid_raw` is the form's identifier: a 12-digit ID number or a staff username."""
    if throttle.ip_blocked():
        audit.record("login.throttled_ip")
        raise LoginFailed("throttled")
    account = find_by_identifier(pid_raw)
    if account is not None:
        left = throttle.account_locked(account.id)
        if left:
            audit.record("login.locked", account_id=account.id)
            raise LoginFailed("locked", left)
    ok = verify_password(account.password_hash if account else None, password or "")
    if not ok or account is None:
        throttle.record_failure(account.id if account else None)
        # An account waiting for activation has no password yet: the attempt is recorded as
        # such for the audit, and the page says what it says for any wrong password.
        pending = account is not None and account.status == ACCOUNT_PENDING_ACTIVATION
        audit.record("login.pending_activation" if pending else "login.failure",
                     account_id=account.id if account else None)
        raise LoginFailed("invalid")
    if not account.active:
        audit.record("login.account_locked" if account.status == ACCOUNT_LOCKED
                     else "login.inactive", account_id=account.id, status=account.status,
                     reason=account.status_reason)
        raise LoginFailed("inactive", message=STAFF_INACTIVE_MESSAGE
                          if account.kind == staff.STAFF else INACTIVE_MESSAGES.get(account.status))
    throttle.record_success(account.id)
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
        db.session.commit()
    return account


def start_pending(account: Account, amr: list[str], interaction: str | None) -> None:
    session["pending"] = {"account_id": account.id, "amr": amr, "at": int(time.time()),
                          "interaction": interaction}


def pending() -> dict | None:
    data = session.get("pending")
    if not data or time.time() - data["at"] > PENDING_TTL:
        session.pop("pending", None)
        return None
    return data


def verify_totp(account: Account, code: str) -> bool:
    if not account.totp_secret_encrypted:
        return False
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if len(code) != 6:
        return False
    totp = pyotp.TOTP(crypto.decrypt(account.totp_secret_encrypted))
    now = time.time()
    for offset in (-1, 0, 1):  # one step of clock drift either way
        step = int(now // 30) + offset
        if step > account.totp_last_step and crypto.equal(totp.at(step * 30), code):
            account.totp_last_step = step  # the same code cannot be used twice
            db.session.commit()
            return True
    return False


def recent(sess: dict | None) -> bool:
    """Changing how one signs in needs a recent login, not just a session (NIST 800-63B 6.1)."""
    from flask import current_app

    return bool(sess) and time.time() - sess["auth_time"] <= current_app.config["REAUTH_MAX_AGE"]


def remember_next(target: str | None) -> None:
    """Where to go after a login that was not started by a portal: local paths only."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        session["login_next"] = target[:200]


def finish_login(account: Account, amr: list[str]) -> dict:
    """Create a fresh SSO session after every factor has passed."""
    session.pop("pending", None)
    amr = list(dict.fromkeys(amr))
    if len(amr) > 1 and "mfa" not in amr:
        amr.append("mfa")
    sess = sessions.create(account.id, amr, acr_for(account.level, amr))
    audit.record("login.success", account_id=account.id, amr=amr)
    return sess


def step_up(account: Account, sess: dict, methods: list[str]) -> dict:
    """Add a second factor (`methods`, e.g. ["otp"]) to the citizen's live session: the same
    session (sid, auth_time, portals) under a fresh cookie, its amr now with "mfa"."""
    amr = list(dict.fromkeys(sess["amr"] + methods + ["mfa"]))
    sess = sessions.renew(sess, amr=amr, acr=acr_for(account.level, amr))
    audit.record("login.step_up", account_id=account.id, amr=amr)
    return sess
