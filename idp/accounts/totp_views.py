"""TOTP (RFC 6238) enrolment and removal from the account page."""

from __future__ import annotations

import time

import pyotp
from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from .. import audit, crypto, sessions
from ..extensions import db
from ..models import Account
from .authn import TOTP_ISSUER, recent
from .blueprint import bp


def _account_for_change(next_endpoint: str):
    """(account, None) when the citizen signed in recently, else (None, a redirect to login)."""
    sess = sessions.current()
    if sess is None:
        return None, redirect(url_for("accounts.login"))
    if not recent(sess):
        return None, redirect(url_for("accounts.login", reauth=1, next=url_for(next_endpoint)))
    return db.session.get(Account, sess["account_id"]), None


def _matching_step(secret: str, code: str) -> int | None:
    """The time step (one either side for clock drift) whose code is `code`, or None."""
    if len(code) != 6:
        return None
    totp, now = pyotp.TOTP(secret), int(time.time() // 30)
    for step in (now - 1, now, now + 1):
        if crypto.equal(totp.at(step * 30), code):
            return step
    return None


@bp.route("/account/totp", methods=["GET", "POST"])
def totp_enrol():
    account, elsewhere = _account_for_change("accounts.totp_enrol")
    if elsewhere:
        return elsewhere
    secret = session.get("totp_enrol") or pyotp.random_base32()
    session["totp_enrol"] = secret
    error = None
    if request.method == "POST":
        code = "".join(c for c in request.form.get("code", "") if c.isdigit())
        step = _matching_step(secret, code)
        if step is not None:
            account.totp_secret_encrypted = crypto.encrypt(secret)
            account.totp_last_step = step  # RFC 6238 5.2: this code is now spent
            db.session.commit()
            session.pop("totp_enrol", None)
            audit.record("totp.enrolled", account_id=account.id)
            return redirect(url_for("accounts.account"))
        error = _("That code is not correct. Enter the 6 digits your app shows now.")
    uri = pyotp.TOTP(secret).provisioning_uri(name=account.full_name, issuer_name=TOTP_ISSUER)
    return render_template("totp_enrol.html", secret=secret, uri=uri, error=error), \
        (400 if error else 200)


@bp.route("/account/totp/remove", methods=["POST"])
def totp_remove():
    account, elsewhere = _account_for_change("accounts.account")
    if elsewhere:
        return elsewhere
    account.totp_secret_encrypted = None
    db.session.commit()
    audit.record("totp.removed", account_id=account.id)
    return redirect(url_for("accounts.account"))
