"""Step-up during an authorization (acr_values or an essential acr claim not yet satisfied).

Two pages, reached from `authorize.decide` with the interaction handle:
- `/login/step-up`: a second factor inside the existing SSO session: the TOTP code (throttled
  like the login), a passkey when the account has one, or, for an account without an
  authenticator app, setting one up right there (after a recent login). Success adds the method
  and "mfa" to the session's amr (same sid, fresh cookie) and the authorization resumes.
- `/login/step-up/level`: the account is below the level asked for; the page says how to reach
  level 2, and its button returns `unmet_authentication_requirements` to the portal (OpenID
  Connect Unmet Authentication Requirements 1.0).
"""

from __future__ import annotations

import pyotp
from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from .. import audit, crypto, sessions
from ..extensions import db
from ..models import Account, WebAuthnCredential
from ..oauth2 import authorize
from ..oauth2.responses import AuthorizationError, respond_error
from . import authn
from .blueprint import bp
from .flow import LOGIN_MESSAGES, interaction_context, resume
from .totp_views import _matching_step


def _setup_secret() -> str:
    """The key being set up in this browser (the same one the account page would show)."""
    secret = session.get("totp_enrol") or pyotp.random_base32()
    session["totp_enrol"] = secret
    return secret


def _check_code(account: Account, code: str) -> tuple[str | None, int]:
    """Verify an existing authenticator's code, throttled like passwords (NIST 800-63B 5.2.2).
    Returns (error text, HTTP status); (None, 200) when the code is right."""
    blocked = "throttled" if authn.throttle.ip_blocked() else \
        "locked" if authn.throttle.account_locked(account.id) else None
    if blocked:
        audit.record(f"login.otp_{blocked}", account_id=account.id)
        return LOGIN_MESSAGES[blocked](), 429
    if authn.verify_totp(account, code):
        return None, 200
    authn.throttle.record_failure(account.id)
    audit.record("login.otp_failure", account_id=account.id)
    return _("That code is not correct. Enter the 6 digits your app shows now."), 401


def _enrol(account: Account, code: str) -> tuple[str | None, int]:
    """Turn on the authenticator app being set up; its first code is the second factor."""
    secret = _setup_secret()
    step = _matching_step(secret, "".join(c for c in code if c.isdigit()))
    if step is None:
        return _("That code is not correct. Enter the 6 digits your app shows now."), 400
    account.totp_secret_encrypted = crypto.encrypt(secret)
    account.totp_last_step = step  # RFC 6238 5.2: this code is now spent
    db.session.commit()
    session.pop("totp_enrol", None)
    audit.record("totp.enrolled", account_id=account.id)
    return None, 200


@bp.route("/login/step-up", methods=["GET", "POST"])
def step_up():
    handle = request.values.get("interaction")
    data, areq, client = interaction_context(handle)
    if data is None:
        return redirect(url_for("accounts.account"))
    sess = sessions.current()
    if sess is None:  # the session ended meanwhile: sign in, then the authorization goes on
        return redirect(url_for("accounts.login", interaction=handle))
    account = db.session.get(Account, sess["account_id"])
    if account is None or not account.active:
        return resume(handle)  # the authorization ends the session and asks for a login
    if request.form.get("action") == "cancel":
        audit.record("authorize.step_up_cancelled", account_id=account.id,
                     client_id=areq.client_id)
        authorize.end_interaction(handle)
        return respond_error(areq.redirect_uri, areq.response_mode, areq.state,
                             AuthorizationError("access_denied", "the user cancelled"))
    if authorize.token_acr(areq, account, sess["amr"]):
        return resume(handle)  # already satisfied (another tab, the back button)
    has_totp = bool(account.totp_secret_encrypted)
    error, status = None, 200
    if request.method == "POST":
        code = request.form.get("code", "")
        if has_totp:
            error, status = _check_code(account, code)
        elif authn.recent(sess):
            error, status = _enrol(account, code)
        else:
            return redirect(url_for("accounts.step_up", interaction=handle))
        if error is None:
            authn.step_up(account, sess, ["otp"])
            return resume(handle)
    has_passkey = db.session.scalar(db.select(WebAuthnCredential.id).filter_by(
        account_id=account.id).limit(1)) is not None
    setup = None
    if not has_totp and authn.recent(sess):
        secret = _setup_secret()
        setup = {"secret": secret, "uri": pyotp.TOTP(secret).provisioning_uri(
            name=account.full_name, issuer_name=authn.TOTP_ISSUER)}
    return render_template("accounts/step_up.html", client=client, interaction=handle,
                           has_totp=has_totp, has_passkey=has_passkey, setup=setup,
                           error=error), status


@bp.route("/login/step-up/level", methods=["GET", "POST"])
def step_up_level():
    handle = request.values.get("interaction")
    data, areq, client = interaction_context(handle)
    if data is None:
        return redirect(url_for("accounts.account"))
    sess = sessions.current()
    if request.method == "POST":
        audit.record("authorize.level_unmet", account_id=sess["account_id"] if sess else None,
                     client_id=areq.client_id)
        authorize.end_interaction(handle)
        return respond_error(areq.redirect_uri, areq.response_mode, areq.state,
                             AuthorizationError("unmet_authentication_requirements",
                                                "the account does not reach the requested "
                                                "assurance level"))
    return render_template("accounts/step_up_level.html", client=client, interaction=handle)
