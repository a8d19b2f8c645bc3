"""Identity issuance: an approved case becomes an account, at most one per ID number.

The account is created in the SAME transaction that links it to the case (`Case.account_id`,
unique) and moves the case to `approved`, so a crash leaves either both or neither. Two guards
make a second account impossible: the unique keyed hash of the ID number (`Account.pid_hash`)
and the case's own link (a resumed case finds the account it created and links it again:
idempotent). The account starts `pending_activation`: the citizen sets a password and a second
factor (`ekyc.service.activate`) before the first login.

The account's level is the case's `target_level`: 1 for a remote case, 2 for a counter case
(an operator saw the citizen and the card in person). A counter case for a number that already
has a level-1 account does not create a second account: it raises the existing one to level 2
(audited `account.level_raised`; `raises_level`). The case cannot link to that account
(`Case.account_id` is unique and the first case holds it), so a resumed counter case recognises
its own raise from the audit log. A remote case for a number with an account, and a counter
case for a number whose account is already level 2, stay "already enrolled".

Only register-verified fields go into the account: name, date of birth and sex (the register
matched them); the residence only when the register matched it too.
"""

from __future__ import annotations

import datetime as dt

from idp import audit, crypto
from idp.extensions import db
from idp.models import ACCOUNT_PENDING_ACTIVATION, Account, AuditEvent

from .models import Case, utcnow

COUNTER_CHANNEL = "counter"
LEVEL_RAISED = "account.level_raised"

GENDERS = {"M": "male", "F": "female"}


class AlreadyEnrolled(Exception):
    """Another case already created the account for this ID number."""


def pid_hash(national_id: str) -> str:
    """The lookup hash of an ID number (the same one login uses)."""
    return crypto.keyed_hash("pid", national_id)


def find_account(national_id: str) -> Account | None:
    return db.session.scalar(db.select(Account).filter_by(pid_hash=pid_hash(national_id)))


def _split_name(full_name: str) -> tuple[str, str]:
    """Vietnamese order: family name first, then middle and given names."""
    parts = full_name.split()
    return (parts[0], " ".join(parts[1:])) if len(parts) > 1 else (full_name, "")


def _birthdate(value) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _raised_by(case: Case, account: Account) -> bool:
    """Whether `case` already raised `account`'s level (a resumed run finds its own raise)."""
    details = db.session.scalars(db.select(AuditEvent.detail).where(
        AuditEvent.event == LEVEL_RAISED, AuditEvent.account_id == account.id)).all()
    return any((d or {}).get("case_id") == case.id for d in details)


def raises_level(case: Case, account: Account | None) -> bool:
    """Whether approving `case` raises the existing `account` instead of issuing a new one:
    a counter case (target level 2) and a citizen account below level 2 (or one this case has
    already raised). The duplicate check treats such an account as not "enrolled elsewhere"."""
    if account is None or case.channel != COUNTER_CHANNEL or (case.target_level or 1) < 2:
        return False
    if account.kind != "citizen" or account.id == case.account_id:
        return False
    return account.level < case.target_level or _raised_by(case, account)


def issue_account(case: Case, fields: dict, register_fields: dict) -> Account:
    """Create (or find again) the account of `case`, linked to it; the caller commits.

    The level is `case.target_level`. `fields` are the identity fields read from the card,
    `register_fields` the register's per-field verdicts. Raises `AlreadyEnrolled` when the
    number belongs to another case's account, except that a counter case raises an existing
    level-1 account to level 2 and returns it (not linked: the first case holds the link).
    A concurrent duplicate shows up as an IntegrityError at commit (unique pid_hash).
    """
    national_id = fields["national_id"]
    level = case.target_level or 1
    existing = find_account(national_id)
    if existing is not None:
        if existing.id == case.account_id or existing.onboarded_case_id == case.id:
            case.account_id = existing.id
            return existing
        if raises_level(case, existing):
            if existing.level < level:
                previous = existing.level
                existing.level = level
                existing.register_checked_at = utcnow()
                audit.record(LEVEL_RAISED, account_id=existing.id, commit=False,
                             case_id=case.id, level=level, previous=previous)
            return existing
        raise AlreadyEnrolled()
    family, given = _split_name(fields["full_name"])
    address = None
    if fields.get("residence") and register_fields.get("residence") == "match":
        address = {"formatted": fields["residence"], "country": "VN"}
    now = utcnow()
    account = Account(pid_hash=pid_hash(national_id), pid_encrypted=crypto.encrypt(national_id),
                      full_name=fields["full_name"], family_name=family, given_name=given,
                      birthdate=_birthdate(fields.get("date_of_birth")),
                      gender=GENDERS.get(fields.get("sex") or "", ""), address=address,
                      level=level, status=ACCOUNT_PENDING_ACTIVATION, locale=case.locale,
                      onboarded_case_id=case.id, register_checked_at=now)
    db.session.add(account)
    db.session.flush()  # assigns the id; a duplicate pid_hash fails here or at commit
    case.account_id = account.id
    audit.record("account.issued", account_id=account.id, commit=False, case_id=case.id,
                 level=level)
    return account
