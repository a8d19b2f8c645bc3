"""Account lifecycle in the console (`/ops/accounts`): find a citizen's account by ID number,
see its status, authenticators (never secrets) and login history, lock and unlock it with a
reason, reset its authenticators after an in-person identity check.

Only citizen accounts are reachable here (staff accounts never). Every view names its purpose
and is audited (`ops.account_viewed`, `ops.login_history_viewed`); the lookup itself is a POST
so the ID number never appears in a URL or an access log. Operators and supervisors act;
auditors only read (every POST but the lookup answers 403).

Lock ends every SSO session of the account (back-channel logout to the portals in it) and
revokes its refresh tokens. Reset clears the password, the TOTP secret and the passkeys, ends
the sessions, and puts the account back to `pending_activation`; the citizen activates again
with a link shown once, through the case that created the account (`counter.activation_link`).
The operator's note on a lock or unlock is encrypted (`idp.crypto.encrypt`) and kept inside
that audit entry (no other column holds it); it is never written in clear anywhere.
"""

from __future__ import annotations

import math

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp import audit, crypto, sessions
from idp.accounts.authn import normalise_pid
from idp.accounts.claims_text import EVENT_TEXT
from idp.extensions import db
from idp.models import (
    ACCOUNT_ACTIVE,
    ACCOUNT_LOCKED,
    ACCOUNT_PENDING_ACTIVATION,
    Account,
    AuditEvent,
    RefreshToken,
    WebAuthnCredential,
)

from . import bp
from .auth import ACTING_ROLES, PURPOSES, actor, current_operator, require
from .counter import activation_link

LOCK_REASONS = {
    "reported_stolen": _l("Card or phone reported stolen"),
    "fraud_suspected": _l("Fraud suspected"),
    "citizen_request": _l("Citizen's request"),
    "deceased": _l("Citizen deceased"),
    "other": _l("Other (explain in the note)"),
}
UNLOCK_REASONS = {
    "identity_confirmed": _l("Identity confirmed in person"),
    "citizen_request": _l("Citizen's request"),
    "locked_in_error": _l("Locked in error"),
    "other": _l("Other (explain in the note)"),
}
STATUS_TEXT = {
    ACCOUNT_ACTIVE: _l("Active"),
    ACCOUNT_PENDING_ACTIVATION: _l("Waiting for activation"),
    ACCOUNT_LOCKED: _l("Locked"),
}
STATUS_REASON_TEXT = {**LOCK_REASONS, "deceased": _l("Citizen deceased"),
                      "card_revoked": _l("Card revoked in the register")}
# The events of an account that make up its login history.
HISTORY_PREFIXES = ("login.", "account.", "ops.account_", "ops.authenticators_reset", "logout",
                    "session.", "totp.", "passkey.", "account_locked_register",
                    "ops.activation_link_shown")
HISTORY_TEXT = {
    **EVENT_TEXT,
    "login.pending_activation": _l("Sign-in refused: account waiting for activation"),
    "login.account_locked": _l("Sign-in refused: account locked"),
    "account.issued": _l("Account created"),
    "account.activated": _l("Account activated"),
    "account.level_raised": _l("Identity level raised"),
    "account_locked_register": _l("Locked after a population register change"),
    "ops.account_viewed": _l("Account viewed by an operator"),
    "ops.account_locked": _l("Locked by an operator"),
    "ops.account_unlocked": _l("Unlocked by an operator"),
    "ops.authenticators_reset": _l("Authenticators reset by an operator"),
    "ops.activation_link_shown": _l("Activation link given"),
}
HISTORY_PAGE_SIZE = 25
MAX_NOTE = 2000


def _render(template: str, status: int = 200, **context):
    return render_template(f"ops/{template}", **context), status


def _citizen(account_id: str) -> Account:
    """The citizen account `account_id`, else 404 (staff accounts are never shown here)."""
    account = db.session.get(Account, account_id) if len(account_id) <= 36 else None
    if account is None or account.kind != "citizen":
        abort(404)
    return account


def _last_digits(account: Account) -> str:
    try:
        number = crypto.decrypt(account.pid_encrypted) if account.pid_encrypted else ""
    except RuntimeError:
        number = ""
    return number[-3:]


def _purpose() -> str | None:
    purpose = request.args.get("purpose", "")
    return purpose if purpose in PURPOSES else None


def _may_act() -> bool:
    op = current_operator()
    return op is not None and op.role in ACTING_ROLES


# -- lookup --------------------------------------------------------------------------------------

@bp.route("/accounts", methods=["GET", "POST"], endpoint="accounts")
@require()
def accounts():
    error, status = None, 200
    if request.method == "POST":
        number = normalise_pid(request.form.get("number", ""))
        purpose = request.form.get("purpose", "")
        if len(number) != 12:
            error, status = _("Enter the 12 digits of the personal ID number."), 400
        elif purpose not in PURPOSES:
            error, status = _("Choose the purpose of this lookup."), 400
        else:
            account = db.session.scalar(db.select(Account).filter_by(
                pid_hash=crypto.keyed_hash("pid", number), kind="citizen"))
            audit.record("ops.account_lookup", actor=actor(), purpose=purpose,
                         found=account is not None)
            if account is not None:
                return redirect(url_for("ops.account", account_id=account.id, purpose=purpose))
            error, status = _("No account has this ID number."), 404
    return _render("accounts.html", status, error=error, purposes=PURPOSES,
                   purpose=request.form.get("purpose", ""))


# -- the account page ----------------------------------------------------------------------------

def _activated_at(account: Account):
    return db.session.scalar(db.select(AuditEvent.at).where(
        AuditEvent.account_id == account.id, AuditEvent.event == "account.activated")
        .order_by(AuditEvent.id.desc()).limit(1))


def _authenticators(account: Account) -> dict:
    passkeys = db.session.scalar(db.select(db.func.count(WebAuthnCredential.id))
                                 .where(WebAuthnCredential.account_id == account.id))
    return {"password": bool(account.password_hash),
            "totp": bool(account.totp_secret_encrypted), "passkeys": passkeys or 0}


def _account_page(account: Account, purpose: str, *, error: str | None = None,
                  status: int = 200, notice: str | None = None, link=None):
    return _render("account.html", status, account=account, purpose=purpose,
                   purpose_label=PURPOSES[purpose], last_digits=_last_digits(account),
                   status_text=STATUS_TEXT.get(account.status, account.status),
                   reason_text=STATUS_REASON_TEXT.get(account.status_reason or "",
                                                      account.status_reason),
                   activated_at=_activated_at(account), factors=_authenticators(account),
                   may_act=_may_act(), lock_reasons=LOCK_REASONS, unlock_reasons=UNLOCK_REASONS,
                   error=error, notice=notice, link=link)


def _ask_purpose(endpoint: str, account: Account):
    return _render("account_purpose.html", account=account, purposes=PURPOSES,
                   action=url_for(endpoint, account_id=account.id))


@bp.get("/accounts/<account_id>")
@require()
def account(account_id):
    target = _citizen(account_id)
    purpose = _purpose()
    if purpose is None:
        return _ask_purpose("ops.account", target)
    audit.record("ops.account_viewed", actor=actor(), account_id=target.id, purpose=purpose)
    return _account_page(target, purpose)


def _history_query(account: Account):
    return db.select(AuditEvent).where(
        AuditEvent.account_id == account.id,
        db.or_(*[AuditEvent.event.like(f"{prefix}%") for prefix in HISTORY_PREFIXES]))


@bp.get("/accounts/<account_id>/history")
@require()
def account_history(account_id):
    target = _citizen(account_id)
    purpose = _purpose()
    if purpose is None:
        return _ask_purpose("ops.account_history", target)
    query = _history_query(target)
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery()))
    pages = max(1, math.ceil(total / HISTORY_PAGE_SIZE))
    page = min(max(1, request.args.get("page", 1, type=int) or 1), pages)
    rows = db.session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                              .offset((page - 1) * HISTORY_PAGE_SIZE)
                              .limit(HISTORY_PAGE_SIZE)).all()
    events = [{"at": row.at, "event": row.event,
               "label": str(HISTORY_TEXT[row.event]) if row.event in HISTORY_TEXT else None,
               "ip": row.ip or "", "actor": row.actor or ""} for row in rows]
    audit.record("ops.login_history_viewed", actor=actor(), account_id=target.id,
                 purpose=purpose, page=page)
    return _render("account_history.html", account=target, purpose=purpose, events=events,
                   page=page, pages=pages, total=total, last_digits=_last_digits(target))


# -- actions -------------------------------------------------------------------------------------

def _end_sessions(account: Account, reason: str) -> int:
    """End every SSO session of the account (back-channel logout to its portals) and revoke
    its refresh tokens; returns how many sessions ended. Caller commits."""
    from idp.oauth2.logout import logout_session
    from idp.oauth2.tokens import revoke_grant

    ended = 0
    for sess in sessions.for_account(account.id):
        logout_session(sess)
        ended += 1
    grants = db.session.scalars(
        db.select(RefreshToken.grant_id).where(RefreshToken.account_id == account.id,
                                               RefreshToken.revoked_at.is_(None)).distinct())
    for grant_id in list(grants):
        revoke_grant(grant_id, reason=reason)
    return ended


def _form_purpose() -> str:
    purpose = request.form.get("purpose", "")
    return purpose if purpose in PURPOSES else "citizen_request"


def _note() -> str:
    return (request.form.get("note") or "").strip()[:MAX_NOTE]


@bp.post("/accounts/<account_id>/lock")
@require(*ACTING_ROLES)
def account_lock(account_id):
    target = _citizen(account_id)
    purpose = _form_purpose()
    code = request.form.get("reason", "")
    if code not in LOCK_REASONS:
        return _account_page(target, purpose, error=_("Choose the reason for the lock."),
                             status=400)
    note = _note()
    if code == "other" and not note:
        return _account_page(target, purpose, status=400,
                             error=_("Explain the reason in the note."))
    target.status = ACCOUNT_LOCKED
    target.status_reason = code
    db.session.commit()  # locked first: no new login while the sessions end
    ended = _end_sessions(target, reason="account_locked_operator")
    audit.record("ops.account_locked", actor=actor(), account_id=target.id, commit=False,
                 reason_code=code, sessions_ended=ended,
                 note_encrypted=crypto.encrypt(note) if note else None)
    db.session.commit()
    return _account_page(target, purpose, notice=_("The account is locked. %(n)s sessions "
                                                    "were ended.", n=ended))


@bp.post("/accounts/<account_id>/unlock")
@require(*ACTING_ROLES)
def account_unlock(account_id):
    target = _citizen(account_id)
    purpose = _form_purpose()
    code = request.form.get("reason", "")
    if target.status != ACCOUNT_LOCKED:
        return _account_page(target, purpose, error=_("This account is not locked."),
                             status=409)
    if code not in UNLOCK_REASONS:
        return _account_page(target, purpose, error=_("Choose the reason for the unlock."),
                             status=400)
    note = _note()
    if code == "other" and not note:
        return _account_page(target, purpose, status=400,
                             error=_("Explain the reason in the note."))
    # Back to where the account was: usable if the citizen has activated it, else waiting.
    target.status = ACCOUNT_ACTIVE if target.password_hash else ACCOUNT_PENDING_ACTIVATION
    target.status_reason = None
    audit.record("ops.account_unlocked", actor=actor(), account_id=target.id, commit=False,
                 reason_code=code, note_encrypted=crypto.encrypt(note) if note else None)
    db.session.commit()
    return _account_page(target, purpose, notice=_("The account is unlocked."))


@bp.post("/accounts/<account_id>/reset")
@require(*ACTING_ROLES)
def account_reset(account_id):
    target = _citizen(account_id)
    purpose = _form_purpose()
    if request.form.get("in_person") != "yes":
        return _account_page(target, purpose, status=400, error=_(
            "Confirm that the citizen is present and that you checked their identity in "
            "person against their chip card."))
    if target.status == ACCOUNT_LOCKED:
        return _account_page(target, purpose, status=409,
                             error=_("This account is locked: unlock it first."))
    passkeys = db.session.execute(db.delete(WebAuthnCredential).where(
        WebAuthnCredential.account_id == target.id)).rowcount
    cleared = {"password": bool(target.password_hash),
               "totp": bool(target.totp_secret_encrypted), "passkeys": passkeys or 0}
    target.password_hash = None
    target.totp_secret_encrypted = None
    target.totp_last_step = 0
    target.status = ACCOUNT_PENDING_ACTIVATION
    target.status_reason = None
    db.session.commit()  # no factor left: nobody signs in from here on
    ended = _end_sessions(target, reason="authenticators_reset")
    link = activation_link(target)
    audit.record("ops.authenticators_reset", actor=actor(), account_id=target.id, commit=False,
                 sessions_ended=ended, link_shown=link is not None, **cleared)
    db.session.commit()
    notice = _("The authenticators are reset and every session is ended.")
    return _account_page(target, purpose, notice=notice, link=link or {"missing": True})
