"""Citizen pages: login (password, TOTP, passkey), account selection, consent, account page."""

from __future__ import annotations

import json

from flask import abort, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from .. import audit, sessions, staff
from ..extensions import db
from ..models import Account, AuditEvent, Client, Consent, WebAuthnCredential, utcnow
from ..oauth2 import authorize
from . import authn, passkeys, step_up, totp_views  # noqa: F401  (routes register on import)
from .blueprint import bp
from .claims_text import describe_claims, describe_event
from .flow import LOGIN_MESSAGES, after_login
from .flow import interaction_context as _interaction_context

__all__ = ["bp"]

def _audience_notice(client) -> str | None:
    """Which kind of account this sign-in needs, said when it matters: always for a staff
    client (the console), and for a citizens' portal when a staff member is signed in here."""
    audience = (client.audience or "citizen") if client is not None else None
    if audience == staff.STAFF:
        return _("This service is for staff. Sign in with your staff username.")
    sess = sessions.current()
    account = db.session.get(Account, sess["account_id"]) if sess and audience else None
    if account is not None and account.kind == staff.STAFF:
        return _("This service is for citizens. Sign in with a citizen account and your "
                 "personal ID number.")
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    handle = request.values.get("interaction")
    _data, areq, client = _interaction_context(handle)
    error, status = None, 200
    hint = areq.login_hint if areq and areq.login_hint else ""
    staff_only = client is not None and client.audience == staff.STAFF
    if request.method == "GET" and not handle:
        authn.remember_next(request.args.get("next"))
    if request.method == "POST":
        try:
            account = authn.check_password(request.form.get("national_id", ""),
                                           request.form.get("password", ""))
        except authn.LoginFailed as failed:
            raw = request.form.get("national_id", "")
            error = str(failed.message) if failed.message else LOGIN_MESSAGES[failed.code]()
            if failed.code == "invalid" and staff_only:
                error = _("The username or password is not correct.")
            status = 429 if failed.code in ("locked", "throttled") else 401
            hint = authn.normalise_identifier(raw)
        else:
            if account.totp_secret_encrypted:
                authn.start_pending(account, ["pwd"], handle)
                return redirect(url_for("accounts.login_otp"))
            return after_login(handle, authn.finish_login(account, ["pwd"]))
    reauth = request.args.get("reauth") == "1"
    return render_template("login.html", client=client, areq=areq, interaction=handle,
                           error=error, login_hint=hint, reauth=reauth, staff_only=staff_only,
                           audience_notice=_audience_notice(client)), status


@bp.route("/login/otp", methods=["GET", "POST"])
def login_otp():
    pending = authn.pending()
    if pending is None:
        return redirect(url_for("accounts.login"))
    account = db.session.get(Account, pending["account_id"])
    error, status = None, 200
    if request.method == "POST":
        # Code guessing is throttled like password guessing (NIST SP 800-63B 5.2.2).
        blocked = "throttled" if authn.throttle.ip_blocked() else \
            "locked" if authn.throttle.account_locked(account.id) else None
        if blocked:
            audit.record(f"login.otp_{blocked}", account_id=account.id)
            return render_template("login_otp.html", error=LOGIN_MESSAGES[blocked]()), 429
        if authn.verify_totp(account, request.form.get("code", "")):
            return after_login(pending["interaction"],
                               authn.finish_login(account, pending["amr"] + ["otp"]))
        authn.throttle.record_failure(account.id)
        audit.record("login.otp_failure", account_id=account.id)
        error, status = _("That code is not correct. Enter the 6 digits your app shows now."), 401
    return render_template("login_otp.html", error=error), status


@bp.route("/select-account", methods=["GET", "POST"])
def select_account():
    handle = request.values.get("interaction")
    data, _areq, client = _interaction_context(handle)
    sess = sessions.current()
    if data is None:
        return redirect(url_for("accounts.account"))
    if request.method == "POST":
        if request.form.get("choice") == "other" or sess is None:
            if sess:
                sessions.destroy(sess)
            return redirect(url_for("accounts.login", interaction=handle))
        data["selected"] = True
        authorize.update_interaction(handle, data)
        return redirect(url_for("oauth2.authorize_resume", interaction=handle))
    account = db.session.get(Account, sess["account_id"]) if sess else None
    return render_template("select_account.html", client=client, account=account,
                           interaction=handle)


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    handle = request.values.get("interaction")
    data, areq, client = _interaction_context(handle)
    sess = sessions.current()
    if data is None or sess is None:
        return redirect(url_for("accounts.login", interaction=handle) if data
                        else url_for("accounts.account"))
    claims = authorize.requested_claims(areq)
    if request.method == "POST":
        if request.form.get("decision") != "allow":
            audit.record("consent.denied", account_id=sess["account_id"],
                         client_id=client.client_id)
            authorize.end_interaction(handle)
            from ..oauth2.responses import AuthorizationError, respond_error

            return respond_error(areq.redirect_uri, areq.response_mode, areq.state,
                                 AuthorizationError("access_denied", "the user declined"))
        row = db.session.scalar(db.select(Consent).filter_by(account_id=sess["account_id"],
                                                             client_id=client.client_id))
        if row is None:
            row = Consent(account_id=sess["account_id"], client_id=client.client_id, scopes="",
                          claims="")
            db.session.add(row)
        row.scopes = " ".join(sorted(set(row.scopes.split()) | set(areq.scope.split())))
        row.claims = " ".join(sorted(set(row.claims.split()) | set(claims)))
        row.granted_at = utcnow()
        db.session.commit()
        audit.record("consent.granted", account_id=sess["account_id"],
                     client_id=client.client_id, scopes=row.scopes)
        data["consented"] = True
        authorize.update_interaction(handle, data)
        return redirect(url_for("oauth2.authorize_resume", interaction=handle))
    return render_template("consent.html", client=client, interaction=handle,
                           claims=describe_claims(claims),
                           offline="offline_access" in areq.scope.split())


def _require_login():
    sess = sessions.current()
    if sess is None:
        abort(redirect(url_for("accounts.login")))
    account = db.session.get(Account, sess["account_id"])
    if account is None:
        sessions.destroy(sess)
        abort(redirect(url_for("accounts.login")))
    if account.kind == staff.STAFF:  # the citizen's account page is not theirs: the console is
        abort(redirect("/ops/"))
    return sess, account


@bp.route("/account")
def account():
    sess, account = _require_login()
    consents = db.session.execute(
        db.select(Consent, Client).join(Client, Client.client_id == Consent.client_id)
        .filter(Consent.account_id == account.id)).all()
    history = db.session.scalars(
        db.select(AuditEvent).filter_by(account_id=account.id)
        .order_by(AuditEvent.id.desc()).limit(20)).all()
    passkey_rows = db.session.scalars(
        db.select(WebAuthnCredential).filter_by(account_id=account.id)).all()
    return render_template("account.html", account=account, current=sess,
                           sessions=sessions.for_account(account.id), consents=consents,
                           history=history, passkeys=passkey_rows,
                           claims_of=lambda c: describe_claims(c.claims.split()),
                           event_text=describe_event)


@bp.route("/account/sessions/end", methods=["POST"])
def end_session_row():
    _sess, account = _require_login()
    handle = request.form.get("handle", "")
    target = sessions.by_handle(handle)
    if target and target["account_id"] == account.id:
        from ..oauth2.logout import logout_session

        logout_session(target)
        audit.record("session.ended_by_user", account_id=account.id)
    return redirect(url_for("accounts.account"))


@bp.route("/account/consents/revoke", methods=["POST"])
def revoke_consent():
    _sess, account = _require_login()
    client_id = request.form.get("client_id", "")
    row = db.session.scalar(db.select(Consent).filter_by(account_id=account.id,
                                                         client_id=client_id))
    if row is not None:
        db.session.delete(row)
        db.session.commit()
        from ..oauth2.tokens import revoke_for_client

        revoke_for_client(account.id, client_id)
        audit.record("consent.revoked", account_id=account.id, client_id=client_id)
    return redirect(url_for("accounts.account"))


@bp.route("/lang/<code>")
def set_language(code):
    if code in ("vi", "en"):
        session["lang"] = code
    target = request.args.get("next", "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"  # only local paths: no open redirect
    return redirect(target)


@bp.app_context_processor
def _inject():
    return {"json": json, "current_sso": lambda: g.get("sso_session")}
