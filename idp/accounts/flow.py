"""The authorization interaction as the citizen pages see it: load it, resume it after a login."""

from __future__ import annotations

from flask import g, redirect, session, url_for
from flask_babel import gettext as _

from ..clients import get_client
from ..errors import PageError
from ..oauth2 import authorize
from ..oauth2.authz_request import AuthorizationRequest

LOGIN_MESSAGES = {
    "invalid": lambda: _("The ID number or password is not correct."),
    "locked": lambda: _("Too many failed attempts. This account is locked for a while; "
                        "try again later."),
    "throttled": lambda: _("Too many failed attempts from this network. Try again later."),
    "inactive": lambda: _("This account cannot sign in. Ask at your commune police station."),
}


def interaction_context(handle):
    """(interaction data, request, client) of `handle`, (None, None, None) without one; a handle
    that expired or belongs to another browser is an error page."""
    data = authorize.load_interaction(handle) if handle else None
    if handle and data is None:
        raise PageError(_("This sign-in has expired. Go back to the service and start again."),
                        400, "interaction_expired")
    if not data:
        return None, None, None
    areq = AuthorizationRequest.from_dict(data["areq"])
    # CSP form-action also governs the redirects after a submit: allow the client's origin.
    g.form_action = areq.redirect_uri
    return data, areq, get_client(areq.client_id)


def resume(handle: str):
    return redirect(url_for("oauth2.authorize_resume", interaction=handle))


def after_login(handle, sess):
    if handle:
        data = authorize.load_interaction(handle)
        if data is not None:
            data["logged_in_at"] = sess["auth_time"]
            authorize.update_interaction(handle, data)
            return resume(handle)
    return redirect(session.pop("login_next", None) or url_for("accounts.account"))
