"""Staff accounts: the people who use the operator console (operators, supervisors, auditors).

A staff account is an `Account` of kind "staff": a username instead of an ID number, a password
(argon2id) and a TOTP second factor, level 2 (created by an administrator who knows the person).
It signs in at the IdP like a citizen does, but only to clients of audience "staff" (the console,
`ekyc.review.auth`). Its console role lives in an `Operator` row linked by `account_id`.
"""

from __future__ import annotations

import re

import pyotp

from . import crypto
from .accounts.passwords import hash_password, strong_enough
from .extensions import db
from .models import ACCOUNT_ACTIVE, OPERATOR_ROLES, Account, Operator

STAFF = "staff"
# Lower-case letters, digits and . _ -, with at least one letter so that a username can never be
# taken for a 12-digit ID number on the shared login form.
USERNAME_RE = re.compile(r"^(?=.*[a-z])[a-z0-9._-]{3,64}$")
PROVINCE_RE = re.compile(r"^\d{3}$")


class StaffError(ValueError):
    """Input that cannot make a staff account; the message is for the administrator."""


def normalise_username(raw: str | None) -> str:
    return (raw or "").strip().lower()


def looks_like_username(raw: str | None) -> bool:
    """Whether a login identifier is a staff username (else it is read as an ID number)."""
    return bool(USERNAME_RE.match(normalise_username(raw)))


def find_staff(username: str) -> Account | None:
    username = normalise_username(username)
    if not USERNAME_RE.match(username):
        return None
    return db.session.scalar(db.select(Account).filter_by(kind=STAFF, username=username))


def create_staff(username: str, password: str, role: str, *, totp_secret: str | None = None,
                 province: str | None = None, check_strength: bool = True) -> Operator:
    """Create a staff account and its console role. An `operators` row of that username made
    before staff accounts existed (no `account_id`) is linked and updated, not duplicated.
    Raises StaffError for a bad username, role, province or password, or a taken username."""
    username = normalise_username(username)
    if not USERNAME_RE.match(username):
        raise StaffError("username: 3 to 64 characters among a-z 0-9 . _ -, with a letter")
    if role not in OPERATOR_ROLES:
        raise StaffError(f"role must be one of {', '.join(OPERATOR_ROLES)}")
    if province is not None and not PROVINCE_RE.match(province):
        raise StaffError("province must be a 3-digit province code")
    if check_strength and not strong_enough(password or ""):
        raise StaffError("password: at least 10 characters with two of lower case, upper case "
                         "and digits")
    if totp_secret is not None:
        totp_secret = totp_secret.strip().upper()
        try:
            pyotp.TOTP(totp_secret).now()
        except Exception as exc:  # binascii.Error and friends: not base32
            raise StaffError("the TOTP secret must be base32") from exc
    if db.session.scalar(db.select(Account.id).filter_by(username=username)) is not None:
        raise StaffError(f"a staff account {username} already exists")
    operator = db.session.scalar(db.select(Operator).filter_by(username=username))
    if operator is not None and operator.account_id is not None:
        raise StaffError(f"an operator {username} already exists")
    account = Account(kind=STAFF, username=username, full_name=username, level=2,
                      status=ACCOUNT_ACTIVE, password_hash=hash_password(password),
                      totp_secret_encrypted=crypto.encrypt(totp_secret) if totp_secret else None)
    db.session.add(account)
    db.session.flush()
    if operator is None:
        operator = Operator(username=username)
        db.session.add(operator)
    operator.account_id = account.id
    operator.role = role
    operator.province = province
    operator.active = True
    operator.password_hash = None  # the password lives on the account now
    db.session.commit()
    return operator


def provisioning_uri(username: str, secret: str) -> str:
    """otpauth:// URI for an authenticator app (shown once, when the account is made)."""
    from .accounts.authn import TOTP_ISSUER

    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)
