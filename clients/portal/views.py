"""The routes every portal has: home, /login, /callback, /me, /logout, /backchannel-logout."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, redirect, render_template, request
from flask_babel import lazy_gettext as _l

from . import websession
from .acr import ACR_VALUES, satisfies
from .errors import PortalError
from .oidc import IdPRefused, IdPUnavailable
from .verify import TokenError, verify_id_token, verify_logout_token

bp = Blueprint("portal", __name__)
SHOWN_CLAIMS = ("name", "family_name", "given_name", "birthdate", "gender", "email",
                "email_verified", "phone_number", "phone_number_verified", "address")


def oidc():
    return current_app.extensions["oidc"]


def safe_next(value: object) -> str:
    """Only a path on this portal: never `//host` or a full URL (open redirect)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")) \
            and len(value) < 500 and value.isprintable():
        return value
    return "/"


def login_url(next_path: str, acr: str | None = None) -> str:
    params = {"next": next_path, **({"acr": acr} if acr else {})}
    return "/login?" + urlencode(params)


def page(template: str, status: int = 200, **context):
    response = current_app.make_response((render_template(template, **context), status))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_app_request
def security_headers(response):
    conf = current_app.config
    # No script at all; inline styles only; forms post here, and /logout leads to the IdP.
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        f"form-action 'self' {conf['IDP_ORIGIN']}; frame-ancestors 'none'; base-uri 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@bp.get("/")
def home():
    sess = websession.current()
    signed_out = False
    state = request.args.get("state")
    if state and isinstance(sess.data.get("logout_state"), str) and \
            secrets.compare_digest(sess.data["logout_state"], state):
        signed_out = True  # back from the IdP's logout with the state we sent
        sess.data.pop("logout_state")
        sess.changed()
    user = sess.user
    return page("home.html", user=user, signed_out=signed_out, shown=SHOWN_CLAIMS,
                claims=(user or {}).get("claims", {}))


@bp.get("/login")
def login():
    """Start a sign-in: PAR + PKCE + nonce + state, then the browser goes to the IdP.
    `?acr=` asks for an assurance level (step-up), `?next=` is where to land afterwards."""
    profile = current_app.config["PROFILE"]
    acr = request.args.get("acr")
    if acr is not None and acr not in ACR_VALUES:
        raise PortalError("bad_request", f"unknown acr {acr[:80]!r}")
    if acr is None:
        acr_values = list(profile.login_acr)
    else:  # this portal's own requirement and the page's, together
        acr_values = [a for a in profile.login_acr if satisfies(a, acr)] or [acr]
    try:
        url, pending = oidc().start(acr_values=acr_values,
                                    ui_locales=websession.current_lang())
    except IdPUnavailable as exc:
        raise PortalError("idp_unavailable", str(exc)) from exc
    except IdPRefused as exc:
        raise PortalError(exc.error, exc.description) from exc
    pending["next"] = safe_next(request.args.get("next"))
    sess = websession.current()
    # Several tabs may sign in at once; keep the newest few (the oldest is dropped).
    started = dict(sess.data.get("pending", {}))
    started[pending.pop("state")] = pending
    sess.data["pending"] = dict(list(started.items())[-current_app.config["MAX_PENDING_LOGINS"]:])
    sess.changed()
    return redirect(url, 303)


def _take_pending(state: object) -> dict:
    sess = websession.current()
    started = sess.data.get("pending", {})
    if not isinstance(state, str) or state not in started:
        raise PortalError("state_mismatch", "unknown state")
    pending = started.pop(state)  # single use
    sess.changed()
    if time.time() - pending["started"] > current_app.config["LOGIN_TTL"]:
        raise PortalError("login_expired", "the sign-in started too long ago")
    return pending


@bp.get("/callback")
def callback():
    """The IdP's answer (OIDC Core 3.1.2.5 / 3.1.2.6): check it belongs to a sign-in started
    in this browser, exchange the code, verify the ID token, read userinfo, sign in."""
    args = request.args
    pending = _take_pending(args.get("state"))
    # RFC 9207: the answer names its issuer, so a mix-up with another IdP is detected.
    if args.get("iss") != current_app.config["ISSUER"]:
        raise PortalError("token_invalid", "iss parameter missing or wrong")
    if "error" in args:
        raise PortalError(str(args["error"])[:80], str(args.get("error_description", ""))[:300])
    if not isinstance(args.get("code"), str) or not args["code"]:
        raise PortalError("bad_request", "no code")
    try:
        token = oidc().exchange(args["code"], pending["code_verifier"])
        claims = verify_id_token(token["id_token"], provider=oidc().provider,
                                 conf=current_app.config, nonce=pending["nonce"],
                                 acr_values=pending["acr_values"], max_age=pending["max_age"],
                                 access_token=token["access_token"])
        info = oidc().userinfo(token["access_token"])
    except IdPUnavailable as exc:
        raise PortalError("idp_unavailable", str(exc)) from exc
    except IdPRefused as exc:
        raise PortalError("sign_in_failed", str(exc)) from exc
    except TokenError as exc:
        code = "insufficient_assurance" if "acr" in str(exc) else "token_invalid"
        raise PortalError(code, str(exc)) from exc
    # OIDC Core 5.3.2: userinfo must be about the same subject, else it is not used.
    if info.get("sub") != claims["sub"]:
        raise PortalError("token_invalid", "userinfo sub differs from the ID token's")
    sess = websession.current()
    lang = sess.data.get("lang")
    sess.rotate()
    sess.data = {"user": {
        "sub": claims["sub"], "sid": claims["sid"], "acr": claims.get("acr"),
        "amr": claims.get("amr", []), "auth_time": claims.get("auth_time"),
        "id_token": token["id_token"], "signed_in_at": int(time.time()),
        "claims": {k: v for k, v in info.items() if k != "sub"}}}
    if lang:
        sess.data["lang"] = lang
    return redirect(pending["next"], 303)


@bp.get("/me")
def me():
    """The signed-in citizen as JSON (for scripts and tests), or 401."""
    user = websession.current().user
    if not user:
        response = jsonify(error="not_signed_in")
        response.status_code = 401
    else:
        response = jsonify({**user["claims"], "sub": user["sub"], "sid": user["sid"],
                            "acr": user["acr"], "amr": user["amr"],
                            "auth_time": user["auth_time"], "iss": current_app.config["ISSUER"]})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/logout")
def logout_page():
    sess = websession.current()
    return page("logout.html", user=sess.user, csrf_token=sess.csrf_token())


@bp.post("/logout")
def logout():
    """RP-initiated logout (OIDC RP-Initiated Logout 1.0): end our session, then the IdP's."""
    sess = websession.current()
    if not sess.csrf_ok(request.form.get("csrf_token")):
        raise PortalError("csrf", "logout form")
    user = sess.user
    websession.destroy()
    if not user:
        return redirect("/", 303)
    conf = current_app.config
    try:
        end_session = oidc().provider.metadata()["end_session_endpoint"]
    except IdPUnavailable:
        return redirect("/", 303)  # signed out here; the IdP session ends when it expires
    state = secrets.token_urlsafe(16)
    sess.data["logout_state"] = state
    query = urlencode({"id_token_hint": user["id_token"], "client_id": conf["CLIENT_ID"],
                       "post_logout_redirect_uri": f"{conf['BASE_URL']}/", "state": state,
                       "ui_locales": websession.current_lang()})
    return redirect(f"{end_session}?{query}", 303)


@bp.post("/backchannel-logout")
def backchannel_logout():
    """OIDC Back-Channel Logout 1.0 2.5-2.8: verify the logout token, end the sessions."""
    store = current_app.extensions["portal_store"]
    try:
        claims = verify_logout_token(request.form.get("logout_token"),
                                     provider=oidc().provider, conf=current_app.config,
                                     once=store.once)
    except (TokenError, IdPUnavailable) as exc:
        current_app.logger.warning("refused a logout token: %s", exc)
        response = jsonify(error="invalid_request", error_description="logout token refused")
        response.status_code = 400
    else:
        if claims.get("sid"):
            ended = store.end_sid(claims["sid"], claims.get("sub"))
        else:
            ended = store.end_sub(claims["sub"])
        current_app.logger.info("back-channel logout ended %d session(s)", ended)
        response = jsonify({})
    response.headers["Cache-Control"] = "no-store"
    return response


CLAIM_LABELS = {
    "name": _l("Full name"), "family_name": _l("Family name"), "given_name": _l("Given name"),
    "birthdate": _l("Date of birth"), "gender": _l("Sex"), "email": _l("Email"),
    "email_verified": _l("Email verified"), "phone_number": _l("Phone number"),
    "phone_number_verified": _l("Phone number verified"), "address": _l("Address"),
}
VALUE_TEXT = {True: _l("Yes"), False: _l("No"), "female": _l("Female"), "male": _l("Male")}


def claim_value(name: str, value) -> str:
    if isinstance(value, dict):  # OIDC Core 5.1.1 address
        return str(value.get("formatted") or ", ".join(str(v) for v in value.values()))
    if isinstance(value, bool) or value in ("female", "male"):
        return str(VALUE_TEXT[value])
    return str(value)


@bp.app_context_processor
def template_helpers():
    return {"profile": current_app.config["PROFILE"], "current_lang": websession.current_lang,
            "signed_in": bool(websession.current().user),
            "claim_label": lambda name: CLAIM_LABELS.get(name, name), "claim_value": claim_value}
