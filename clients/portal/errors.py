"""Every error the citizen can meet, as one page in their language with a 4xx status (5xx only
when the IdP is unreachable or something unexpected happened); JSON on the JSON routes."""

from __future__ import annotations

from flask import current_app, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

JSON_PATHS = ("/me", "/backchannel-logout")

# code -> (status, title, what the citizen can do). IdP codes come from OAuth 2.0 / OIDC Core.
MESSAGES = {
    "access_denied": (403, _l("Access was not allowed"), _l(
        "You did not allow this portal to use your DinhDanh identity, or you cancelled the "
        "sign-in. Nothing was shared. You can sign in again whenever you wish.")),
    "unmet_authentication_requirements": (403, _l("Your account needs a higher level"), _l(
        "This service needs identification level 2. You can reach it in person at the "
        "commune police, or by verifying the chip of your ID card with DinhDanh.")),
    "insufficient_assurance": (403, _l("Your sign-in is not strong enough"), _l(
        "DinhDanh did not confirm the identification level this service needs. Start again and complete "
        "every step DinhDanh asks for.")),
    "login_required": (400, _l("Please sign in"), _l(
        "You need to sign in at DinhDanh to continue.")),
    "interaction_required": (400, _l("Please sign in"), _l(
        "You need to sign in at DinhDanh to continue.")),
    "consent_required": (400, _l("Please sign in"), _l(
        "You need to sign in at DinhDanh to continue.")),
    "state_mismatch": (400, _l("This sign-in was not started here"), _l(
        "The answer from DinhDanh does not match a sign-in started in this browser, or it was "
        "already used. Start again from this portal.")),
    "login_expired": (400, _l("This sign-in has expired"), _l(
        "It took too long to come back from DinhDanh. Start again from this portal.")),
    "session_expired": (401, _l("Your session has ended"), _l(
        "You were signed out (perhaps from another portal). Sign in again to continue.")),
    "csrf": (400, _l("This form has expired"), _l(
        "Go back, reload the page and try again.")),
    "bad_request": (400, _l("This request is not valid"), _l(
        "The link or form you used is not valid. Go back to the home page and try again.")),
    "token_invalid": (400, _l("The sign-in could not be verified"), _l(
        "The answer from DinhDanh failed a security check, so you were not signed in. Start "
        "again from this portal.")),
    "sign_in_failed": (400, _l("The sign-in did not succeed"), _l(
        "DinhDanh refused this sign-in. Start again from this portal.")),
    "idp_unavailable": (502, _l("DinhDanh cannot be reached"), _l(
        "The national identity service did not answer. Try again in a moment.")),
    "not_found": (404, _l("Page not found"), _l("There is no page at this address.")),
    "method_not_allowed": (405, _l("This request is not valid"), _l(
        "The link or form you used is not valid. Go back to the home page and try again.")),
    "server_error": (500, _l("Something went wrong"), _l(
        "The portal could not complete your request. Try again in a moment.")),
}
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


class PortalError(Exception):
    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}")
        self.code = code if code in MESSAGES else "sign_in_failed"
        self.idp_code = code  # shown small, so a helpdesk knows what the IdP said
        self.detail = detail


def render_error(code: str, idp_code: str | None = None):
    status, title, advice = MESSAGES[code]
    if request.path in JSON_PATHS:
        return jsonify(error=idp_code or code), status
    response = current_app.make_response(
        (render_template("error.html", title=title, advice=advice, code=idp_code or code),
         status))
    response.headers["Cache-Control"] = "no-store"
    return response


def _portal_error(exc: PortalError):
    current_app.logger.info("portal error %s: %s", exc.idp_code, exc.detail)
    return render_error(exc.code, exc.idp_code)


def _http_error(exc: HTTPException):
    return render_error(HTTP_CODES.get(exc.code or 400, "bad_request"))


def _unexpected(exc: Exception):
    current_app.logger.exception("unexpected error")
    return render_error("server_error")


def init_app(app) -> None:
    app.register_error_handler(PortalError, _portal_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
