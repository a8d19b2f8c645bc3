"""Signing in to the operator console: the console is an OpenID Connect client of the IdP.

The client `ops-console` (audience "staff", first party, public subject so `sub` is the staff
account's id) is created on first use; its secret is derived from PAIRWISE_SECRET, so nothing
has to be stored or configured. `/ops/login` sends the browser to /authorize with state, nonce,
PKCE (RFC 7636, S256), `acr_values=urn:dinhdanh:loa:2:mfa` (a second factor is required) and
`max_age` = the console's idle timeout (coming back after the timeout means signing in again).
`/ops/callback` redeems the code through the token endpoint's own logic in this process (no HTTP
call to ourselves), verifies the ID token (OIDC Core 3.1.3.7), finds the staff member's console
role and starts the console session (Flask session key `ops`, idle and absolute timeouts).

Everyone else uses `current_operator()`, `require(*roles)`, `actor()` and `error_page()`.
"""

from __future__ import annotations

import functools
import time
from urllib.parse import urlencode, urlsplit

from flask import (
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from joserfc.errors import JoseError
from werkzeug.test import EnvironBuilder

from idp import audit, crypto, keys
from idp.client_mixin import hash_secret
from idp.clients import forget_client, get_client, validate_metadata
from idp.extensions import db
from idp.models import OPERATOR_ROLES, Account, Client, Operator
from idp.oauth2.scopes import ACR_LEVEL2_MFA

from . import bp

# Roles that act (decide, claim, lock, run a counter); the auditor only reads.
ACTING_ROLES = ("operator", "supervisor")
# Why a case or an account is opened: asked before the page, logged with the view.
PURPOSES = {"review": _l("Review of the case"), "counter": _l("Counter onboarding"),
            "supervision": _l("Supervision (overrides, quality)"),
            "audit": _l("Audit"), "citizen_request": _l("Request from the citizen")}

CLIENT_ID = "ops-console"
SCOPE = "openid"
MAX_PENDING = 3  # console sign-ins started in this browser and not finished (tabs)
PENDING_TTL = 900  # seconds a started sign-in may take
REFRESH_EVERY = 15  # seconds between last_seen updates (the cookie is rewritten then)

# What each role may open in the console (the navigation shows only these; every route also
# checks with `require`). Endpoints that do not exist (yet) are left out.
NAV = (
    ("ops.queue", _l("Review queue"), ("operator", "supervisor", "auditor")),
    ("ops.overrides", _l("Overrides"), ("operator", "supervisor", "auditor")),
    ("ops.counter", _l("Counter onboarding"), ACTING_ROLES),
    ("ops.accounts", _l("Accounts"), ("operator", "supervisor", "auditor")),
    ("ops.dashboard", _l("Dashboard"), ("operator", "supervisor", "auditor")),
    ("ops.audit_log", _l("Audit log"), ("supervisor", "auditor")),
)
ROLE_LABELS = {"operator": _l("Operator"), "supervisor": _l("Supervisor"),
               "auditor": _l("Auditor")}


# -- the console's client at the IdP ---------------------------------------------------------

def client_secret() -> str:
    """The console's client secret: derived, never stored (only its hash is, on the client)."""
    return crypto.keyed_hash("ops-console", "client_secret")


def redirect_uri() -> str:
    return current_app.config["ISSUER"] + "/ops/callback"


def _wanted_metadata() -> dict:
    issuer = current_app.config["ISSUER"]
    meta = validate_metadata({
        "client_name": "DinhDanh operator console", "client_name#vi": "Bảng điều khiển nghiệp vụ",
        "redirect_uris": [redirect_uri()], "post_logout_redirect_uris": [issuer + "/ops/"],
        "response_types": ["code"], "grant_types": ["authorization_code"], "scope": SCOPE,
        "token_endpoint_auth_method": "client_secret_basic"}, allow_http=True)
    return {**meta, "subject_type": "public"}


def ensure_client() -> Client:
    """Create or bring up to date the `ops-console` client (idempotent, safe to race)."""
    from sqlalchemy.exc import IntegrityError

    meta, secret_hash = _wanted_metadata(), hash_secret(client_secret())
    client = get_client(CLIENT_ID)
    if client is not None and client.client_metadata == meta and client.audience == "staff" \
            and client.secret_hash == secret_hash and client.first_party \
            and client.public_subject:
        return client
    if client is None:
        client = Client(client_id=CLIENT_ID, issued_at=int(time.time()))
        db.session.add(client)
    client.client_metadata = meta
    client.secret_hash = secret_hash
    client.audience = "staff"
    client.first_party = True
    client.public_subject = True
    try:
        db.session.commit()
    except IntegrityError:  # another request created it at the same moment
        db.session.rollback()
        client = get_client(CLIENT_ID)
    forget_client(CLIENT_ID)
    return client


# -- the console session ---------------------------------------------------------------------

def _end_session() -> None:
    session.pop("ops", None)
    session.pop("ops_idt", None)


def current_operator() -> Operator | None:
    """The signed-in console user, or None: signed out, idle or absolute timeout passed, or the
    Operator row (or its staff account) is inactive or gone. Refreshes the idle timer."""
    if "ops_operator" in g:
        return g.ops_operator
    data = session.get("ops")
    operator = None
    if isinstance(data, dict):
        conf, now = current_app.config, int(time.time())
        if now - data.get("last_seen", 0) > conf["OPS_IDLE_TIMEOUT"] or \
                now - data.get("auth_time", 0) > conf["OPS_ABSOLUTE_TIMEOUT"]:
            g.ops_expired = True
        else:
            operator = db.session.get(Operator, data.get("operator_id"))
            account = db.session.get(Account, operator.account_id) \
                if operator is not None and operator.account_id else None
            if operator is None or not operator.active or account is None \
                    or account.id != data.get("account_id") or not account.active \
                    or operator.role not in OPERATOR_ROLES:
                operator = None
            elif now - data["last_seen"] >= REFRESH_EVERY:
                session["ops"] = {**data, "last_seen": now, "role": operator.role}
        if operator is None:
            _end_session()
    g.ops_operator = operator
    return operator


def actor() -> str:
    """The signed-in console username, for `audit.record(..., actor=actor())`."""
    operator = current_operator()
    return operator.username if operator is not None else ""


def error_page(status: int, message: str):
    """The console's error page (translated `message`) as a response with `status`."""
    response = make_response(render_template("ops/error.html", status=status, message=message,
                                             operator=current_operator()), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def require(*roles: str):
    """Route decorator: a console session with one of `roles` (any console role when none).
    Signed out: GET goes to the sign-in (and back), other methods get a 401 page; a role not
    listed gets a 403 page."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            operator = current_operator()
            if operator is None:
                if request.method in ("GET", "HEAD"):
                    return redirect(url_for("ops.login", next=request.full_path.rstrip("?")))
                return error_page(401, _("Your console session has ended. Sign in again, "
                                         "then repeat what you were doing."))
            if roles and operator.role not in roles:
                return error_page(403, _("Your role does not allow this."))
            return view(*args, **kwargs)

        return wrapped

    return decorator


def safe_next(target: str | None) -> str | None:
    """A local console path to return to after signing in; anything else is dropped."""
    if not target or len(target) > 500 or "\\" in target or any(ord(c) < 32 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/ops/") or "/../" in parts.path \
            or parts.path.startswith("/ops/login") or parts.path.startswith("/ops/callback"):
        return None
    return target


def _home_for(operator: Operator) -> str | None:
    order = ("ops.audit_log", "ops.dashboard", "ops.queue") if operator.role == "auditor" \
        else ("ops.queue", "ops.dashboard")
    for endpoint in order:
        if endpoint in current_app.view_functions:
            return url_for(endpoint)
    return None


@bp.app_template_global("ops_nav")
def ops_nav() -> list[dict]:
    """Navigation entries the signed-in user's role may use."""
    operator = current_operator()
    if operator is None:
        return []
    return [{"endpoint": endpoint, "label": label, "url": url_for(endpoint),
             "current": request.endpoint == endpoint}
            for endpoint, label, roles in NAV
            if operator.role in roles and endpoint in current_app.view_functions]


bp.add_app_template_global(current_operator, "current_operator")


@bp.app_template_global("ops_role_label")
def ops_role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


@bp.after_request
def _private(response):
    """Console pages show personal data: never stored by a browser or a proxy, and no
    Referer leaves them."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# -- routes ------------------------------------------------------------------------------------

@bp.get("/")
def home():
    """Signed in: the role's start page. Signed out: a page with the sign-in button."""
    operator = current_operator()
    if operator is None:
        signed_out = request.args.get("state") == "signed_out"
        return render_template("ops/signed_out.html", signed_out=signed_out,
                               expired=g.get("ops_expired", False))
    target = _home_for(operator)
    if target:
        return redirect(target)
    return render_template("ops/signed_out.html", operator=operator, signed_out=False,
                           expired=False)


@bp.get("/login")
def login():
    """Start the OIDC sign-in at the IdP (authorization code with PKCE)."""
    target = safe_next(request.args.get("next"))
    if current_operator() is not None:
        return redirect(target or url_for("ops.home"))
    ensure_client()
    state, nonce, verifier = crypto.random_token(24), crypto.random_token(24), \
        crypto.random_token(48)
    pending = {k: v for k, v in (session.get("ops_login") or {}).items()
               if isinstance(v, dict) and v.get("at", 0) + PENDING_TTL > time.time()}
    pending = dict(list(pending.items())[-(MAX_PENDING - 1):])
    pending[state] = {"nonce": nonce, "verifier": verifier, "next": target,
                      "at": int(time.time())}
    session["ops_login"] = pending
    params = {"client_id": CLIENT_ID, "redirect_uri": redirect_uri(), "response_type": "code",
              "scope": SCOPE, "state": state, "nonce": nonce,
              "code_challenge": crypto.sha256_b64(verifier), "code_challenge_method": "S256",
              "acr_values": ACR_LEVEL2_MFA,
              "max_age": str(current_app.config["OPS_IDLE_TIMEOUT"])}
    return redirect(url_for("oauth2.authorize_endpoint") + "?" + urlencode(params))


CALLBACK_ERRORS = {
    "access_denied": _l("The sign-in was cancelled."),
    "unmet_authentication_requirements": _l("The console needs a staff account with a second "
                                            "factor (an authenticator app)."),
}


class SignInRefused(Exception):
    """The callback cannot sign anyone in; `reason` goes to the audit log, never to the page."""

    def __init__(self, reason: str, account_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.account_id = account_id


def _redeem(code: str, verifier: str) -> dict:
    """Exchange the code at the token endpoint's own logic, inside this process: a request
    built as the browser-less client would send it, handled in a context of its own."""
    from idp.oauth2.server import token_endpoint

    issuer = current_app.config["ISSUER"]
    builder = EnvironBuilder(method="POST", path="/token", base_url=issuer,
                             data={"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": redirect_uri(), "code_verifier": verifier},
                             auth=(CLIENT_ID, client_secret()))
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    environ["REMOTE_ADDR"] = request.remote_addr or "127.0.0.1"
    with current_app.request_context(environ):
        response = token_endpoint()
        body = response.get_json(silent=True) or {}
        status = response.status_code
    if status != 200 or "id_token" not in body:
        raise SignInRefused(f"token_{body.get('error', status)}")
    return body


def _claim_checks(nonce: str) -> tuple:
    """(claim, test) pairs the ID token must pass (OIDC Core 3.1.3.7); one leeway for clocks."""
    conf = current_app.config
    now, leeway = time.time(), conf["JWT_LEEWAY"]
    return (
        ("iss", lambda v: v == conf["ISSUER"]),
        ("aud", lambda v: v == CLIENT_ID or v == [CLIENT_ID]),
        ("exp", lambda v: isinstance(v, int) and v + leeway >= now),
        ("iat", lambda v: isinstance(v, int) and v - leeway <= now),
        ("nonce", lambda v: isinstance(v, str) and crypto.equal(v, nonce)),
        ("sub", lambda v: isinstance(v, str) and 0 < len(v) <= 64),
        ("acr", lambda v: v == ACR_LEVEL2_MFA),
        ("amr", lambda v: isinstance(v, list) and "mfa" in v),
        ("auth_time", lambda v: isinstance(v, int)
         and now - v <= conf["OPS_IDLE_TIMEOUT"] + leeway),
    )


def _verify_id_token(id_token: str, nonce: str) -> dict:
    try:
        token = keys.verify(id_token)
    except (JoseError, ValueError, TypeError) as exc:
        raise SignInRefused("id_token_signature") from exc
    claims = token.claims
    if token.header.get("typ", "JWT") != "JWT":
        raise SignInRefused("id_token_type")
    for name, test in _claim_checks(nonce):
        if not test(claims.get(name)):
            raise SignInRefused(f"id_token_{name}")
    return claims


def _operator_for(claims: dict) -> Operator:
    account = db.session.get(Account, claims["sub"])
    if account is None or account.kind != "staff" or not account.active:
        raise SignInRefused("not_staff", claims["sub"] if account else None)
    operator = db.session.scalar(db.select(Operator).filter_by(account_id=account.id))
    if operator is None or not operator.active or operator.role not in OPERATOR_ROLES:
        raise SignInRefused("no_role", account.id)
    return operator


@bp.get("/callback")
def callback():
    pending = session.get("ops_login") or {}
    state = request.args.get("state", "")
    started = pending.pop(state, None) if isinstance(pending, dict) else None
    session["ops_login"] = pending if isinstance(pending, dict) else {}
    if not isinstance(started, dict) or started.get("at", 0) + PENDING_TTL < time.time():
        audit.record("ops.signin_refused", reason="state")
        return error_page(400, _("This sign-in has expired or was not started in this browser. "
                                 "Start again."))
    if request.args.get("error"):
        error = request.args["error"][:64]
        audit.record("ops.signin_refused", reason=f"authorize_{error}")
        message = CALLBACK_ERRORS.get(error)
        return error_page(403 if message else 400, str(message) if message else
                          _("The sign-in could not be completed. Start again."))
    try:
        tokens = _redeem(request.args.get("code", "")[:512], started["verifier"])
        claims = _verify_id_token(tokens["id_token"], started["nonce"])
        operator = _operator_for(claims)
    except SignInRefused as refused:
        audit.record("ops.signin_refused", account_id=refused.account_id, reason=refused.reason)
        if refused.reason in ("no_role", "not_staff"):
            return error_page(403, _("This staff account has no role in the console. Ask a "
                                     "supervisor to give you one."))
        return error_page(400, _("The sign-in could not be completed. Start again."))
    now = int(time.time())
    _end_session()
    session["ops"] = {"operator_id": operator.id, "account_id": operator.account_id,
                      "role": operator.role, "username": operator.username,
                      "auth_time": claims["auth_time"], "last_seen": now,
                      "sid": claims.get("sid")}
    session["ops_idt"] = tokens["id_token"]  # the id_token_hint for signing out at the IdP
    g.pop("ops_operator", None)
    audit.record("ops.signin", account_id=operator.account_id, actor=operator.username,
                 role=operator.role)
    return redirect(started.get("next") or url_for("ops.home"))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """GET: confirm. POST (CSRF-checked): end the console session, then the SSO session at the
    IdP (RP-initiated logout with id_token_hint), which returns to /ops/."""
    operator = current_operator()
    if request.method == "GET":
        return render_template("ops/logout.html", operator=operator)
    hint = session.get("ops_idt")
    if operator is not None:
        audit.record("ops.signout", account_id=operator.account_id, actor=operator.username)
    _end_session()
    g.ops_operator = None
    if not hint:
        return redirect(url_for("ops.home", state="signed_out"), code=303)
    params = {"id_token_hint": hint, "client_id": CLIENT_ID, "state": "signed_out",
              "post_logout_redirect_uri": current_app.config["ISSUER"] + "/ops/"}
    return redirect(url_for("oauth2.end_session") + "?" + urlencode(params), code=303)


__all__ = ["CLIENT_ID", "actor", "current_operator", "ensure_client", "error_page", "require",
           "safe_next"]
