"""The authorization endpoint (RFC 6749 3.1, OIDC Core 3.1.2) and its interaction decisions.

`authorize()` validates the request (authz_request.py), then `decide()` runs the interaction
checks in order: session, audience, max_age, prompt=login, id_token_hint, login_hint, account
selection, acr (step-up), consent. Each either passes, sends the browser to a page (login, step-up,
consent), or, with prompt=none, answers the client with the matching OIDC error. When all pass,
a code is issued, carrying the acr the session satisfied and its amr.
"""

from __future__ import annotations

import time

from flask import current_app, redirect, request, session, url_for

from .. import audit, sessions, store
from ..crypto import random_token
from ..extensions import db
from ..identity import subject_for
from ..models import Account, Client, Consent
from . import tokens
from .authz_request import AuthorizationRequest, RedirectedError, validate
from .responses import AuthorizationError, respond, respond_error
from .scopes import SCOPE_CLAIMS, acr_for_level, level_for_acr, satisfies

MAX_INTERACTIONS = 5  # per browser, so the signed cookie stays small


# -- interactions: an authorization request waiting for the user -----------------------------

def save_interaction(areq: AuthorizationRequest, **state) -> str:
    handle = random_token(16)
    store.put_json(f"ia:{handle}", {"areq": areq.to_dict(), **state},
                   current_app.config["INTERACTION_TTL"])
    owned = [h for h in session.get("ia", []) if h != handle][-(MAX_INTERACTIONS - 1):]
    session["ia"] = owned + [handle]  # binds the interaction to this browser
    return handle


def load_interaction(handle: str | None) -> dict | None:
    if not handle or handle not in session.get("ia", []):
        return None
    return store.get_json(f"ia:{handle}")


def update_interaction(handle: str, data: dict) -> None:
    store.put_json(f"ia:{handle}", data, current_app.config["INTERACTION_TTL"])


def end_interaction(handle: str) -> None:
    store.kv().delete(f"ia:{handle}")
    session["ia"] = [h for h in session.get("ia", []) if h != handle]


# -- the decision checks -------------------------------------------------------------------

class NeedsLogin(Exception):
    """The user must (re-)authenticate; `reason` is for the audit log only."""


class NeedsPage(Exception):
    def __init__(self, page: str):
        super().__init__(page)
        self.page = page


def _check_session(areq, sess, state):
    if sess is None:
        raise NeedsLogin("no_session")


class WrongAudience(Exception):
    """The user signed in, during this authorization, with the wrong kind of account."""


def _check_audience(areq, sess, state, account, client):
    """A client serves one kind of account (Client.audience): citizens' portals never get a
    staff account, the operator console never a citizen's. A session of the other kind counts
    as no session; a login of the wrong kind during this very authorization is refused."""
    if (account.kind or "citizen") == (client.audience or "citizen"):
        return
    if state.get("logged_in_at"):
        raise WrongAudience(client.audience or "citizen")
    raise NeedsLogin("audience")


def _check_prompt_login(areq, sess, state):
    if "login" in areq.prompt and not state.get("logged_in_at"):
        raise NeedsLogin("prompt_login")


def _check_max_age(areq, sess, state):
    if state.get("logged_in_at"):
        return  # authenticated during this very interaction: fresh by definition
    if areq.max_age is not None and time.time() - sess["auth_time"] > areq.max_age:
        raise NeedsLogin("max_age")


def _check_hints(areq, sess, state, account, client):
    if areq.hint_sub and areq.hint_sub != subject_for(client, account):
        raise NeedsLogin("id_token_hint_mismatch")


def token_acr(areq: AuthorizationRequest, account: Account, amr: list[str]) -> str | None:
    """The ID token's acr: the first value asked for that the session satisfies, else (nothing
    asked) the account's level; None when a required value is not satisfied."""
    for value in areq.preferred_acr():
        if satisfies(value, account.level, amr):
            return value
    return None if areq.required_acr() else acr_for_level(account.level)


def _check_acr(areq, sess, state, account):
    """acr_values / an essential acr claim are a requirement; unmet, the citizen steps up
    towards the first value asked: a second factor, or (level too low) the level-2 page."""
    wanted = areq.required_acr()
    if not wanted or token_acr(areq, account, sess["amr"]):
        return
    if account.level < level_for_acr(wanted[0]):
        raise NeedsPage("step_up_level")
    raise NeedsPage("step_up")


def _check_select_account(areq, sess, state):
    if "select_account" in areq.prompt and not state.get("selected"):
        raise NeedsPage("select_account")


def requested_claims(areq: AuthorizationRequest) -> list[str]:
    """Every claim the portal would see: from scopes and the claims parameter."""
    names = [c for s in areq.scope.split() for c in SCOPE_CLAIMS.get(s, []) if c != "sub"]
    for member in (areq.claims or {}).values():
        names += [c for c in member if c not in names and c not in
                  ("acr", "auth_time", "sub", "nonce", "iss", "aud", "exp", "iat", "amr")]
    return list(dict.fromkeys(names))


def consent_covers(consent: Consent | None, areq: AuthorizationRequest) -> bool:
    if consent is None:
        return False
    granted = set(consent.scopes.split()) | set(consent.claims.split())
    wanted = set(areq.scope.split()) | set(requested_claims(areq))
    return wanted <= granted


def _check_consent(areq, sess, state, account, client):
    if client.first_party or state.get("consented"):
        return
    if "consent" in areq.prompt:
        raise NeedsPage("consent")
    consent = db.session.scalar(db.select(Consent).filter_by(account_id=account.id,
                                                             client_id=client.client_id))
    if not consent_covers(consent, areq):
        raise NeedsPage("consent")


PROMPT_NONE_ERRORS = {"select_account": "account_selection_required",
                      "consent": "consent_required",
                      "step_up": "interaction_required",
                      "step_up_level": "interaction_required"}


def decide(areq: AuthorizationRequest, client: Client, handle: str | None = None,
           state: dict | None = None):
    state = state or {}
    sess = sessions.current()
    account = db.session.get(Account, sess["account_id"]) if sess else None
    if sess and (account is None or not account.active):
        sessions.destroy(sess)
        sess, account = None, None
    try:
        try:
            _check_session(areq, sess, state)
            _check_audience(areq, sess, state, account, client)
            _check_prompt_login(areq, sess, state)
            _check_max_age(areq, sess, state)
            _check_hints(areq, sess, state, account, client)
        except NeedsLogin as need:
            if "none" in areq.prompt:
                raise AuthorizationError("login_required", "the user must sign in") from need
            if areq.hint_sub and sess and str(need) == "id_token_hint_mismatch":
                sessions.destroy(sess)
            handle = handle or save_interaction(areq)
            return redirect(url_for("accounts.login", interaction=handle))
        try:
            _check_select_account(areq, sess, state)
            _check_acr(areq, sess, state, account)
            _check_consent(areq, sess, state, account, client)
        except NeedsPage as need:
            if "none" in areq.prompt:
                raise AuthorizationError(PROMPT_NONE_ERRORS[need.page],
                                         f"{need.page} is required") from need
            if need.page.startswith("step_up"):
                state["step_up"] = need.page  # the passkey login then adds to this session
            if handle:
                update_interaction(handle, {"areq": areq.to_dict(), **state})
            else:
                handle = save_interaction(areq, **state)
            return redirect(url_for(f"accounts.{need.page}", interaction=handle))
    except AuthorizationError as error:
        if handle:
            end_interaction(handle)
        return respond_error(areq.redirect_uri, areq.response_mode, areq.state, error)
    except WrongAudience as wrong:
        if handle:
            end_interaction(handle)
        return _wrong_audience_page(str(wrong), account, client)
    if handle:
        end_interaction(handle)
    return issue_code(areq, client, sess, account)


def _wrong_audience_page(audience: str, account, client):
    """403, no code: the account just signed in is not of the kind this client serves."""
    from flask_babel import gettext as _

    from ..errors import error_page

    audit.record("authorize.audience_refused", account_id=account.id,
                 client_id=client.client_id, audience=audience)
    message = (_("This service is only for staff of the identification service. You are signed "
                 "in with a citizen account, so you cannot use it.") if audience == "staff" else
               _("This service is for citizens. A staff account cannot sign in to it: sign in "
                 "with your own citizen account."))
    return error_page(message, 403, "access_denied")


def issue_code(areq, client, sess, account):
    code = tokens.save_code({
        "client_id": client.client_id, "redirect_uri": areq.redirect_uri, "scope": areq.scope,
        "account_id": account.id, "nonce": areq.nonce, "auth_time": sess["auth_time"],
        "acr": token_acr(areq, account, sess["amr"]), "amr": sess["amr"], "sid": sess["sid"],
        "claims": areq.claims,
        "code_challenge": areq.code_challenge,
        "code_challenge_method": areq.code_challenge_method,
        "grant_id": tokens.new_grant_id(),
        "expires_at": time.time() + current_app.config["AUTH_CODE_TTL"]})
    sessions.add_client(sess, client.client_id)
    return respond(areq.redirect_uri, areq.response_mode, {"code": code, "state": areq.state})


# -- the endpoint -----------------------------------------------------------------------------

def authorization_endpoint():
    multi = request.form if request.method == "POST" else request.args
    try:
        areq, client = validate(multi)
    except RedirectedError as exc:
        audit.record("authorize.error", client_id=request.values.get("client_id", "")[:64],
                     error=exc.error.error)
        return respond_error(exc.redirect_uri, exc.response_mode, exc.state, exc.error)
    # A portal's ui_locales speaks for its own request only, not for the next portal's pages.
    if areq.ui_locales:
        session["ui_locales"] = areq.ui_locales
    else:
        session.pop("ui_locales", None)
    return decide(areq, client)


def resume(handle: str):
    """Continue an interaction after login, consent or account selection."""
    from flask_babel import gettext as _

    from ..clients import get_client
    from ..errors import PageError

    data = load_interaction(handle)
    if data is None:
        raise PageError(_("This sign-in has expired. Go back to the service and start again."),
                        400, "interaction_expired")
    areq = AuthorizationRequest.from_dict(data.pop("areq"))
    client = get_client(areq.client_id)
    if client is None:
        raise PageError(_("The service that sent you here is no longer registered."), 400)
    return decide(areq, client, handle, data)
