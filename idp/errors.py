"""One place that turns every error into the right response.

Protocol errors (Authlib `OAuth2Error` subclasses, one class per protocol code) become JSON
with their status; page errors become a translated HTML page; anything unexpected becomes a
generic `server_error` without a stack trace (it is logged server-side).
"""

from __future__ import annotations

import logging

from authlib.oauth2 import OAuth2Error
from flask import jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger(__name__)

# Endpoints whose clients are programs: they get JSON errors, never HTML.
API_PREFIXES = ("/token", "/userinfo", "/revoke", "/introspect", "/register", "/par",
                "/jwks", "/.well-known/", "/healthz", "/login/passkey/", "/account/passkeys/",
                "/api/onboarding/", "/ekyc/register-events", "/readyz", "/metrics")


class PageError(Exception):
    """An error shown to a person as a page (never a redirect): bad client, bad redirect URI."""

    def __init__(self, message: str, status: int = 400, error: str = "invalid_request"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error


def wants_json() -> bool:
    return request.path.startswith(API_PREFIXES)


def oauth_json(error: OAuth2Error):
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    response = jsonify(body)
    response.status_code = error.status_code or 400
    response.headers["Cache-Control"] = "no-store"
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
    return response


def error_page(message: str, status: int, error: str = ""):
    return render_template("error.html", message=message, error=error), status


def register(app) -> None:
    @app.errorhandler(PageError)
    def _page(exc: PageError):
        return error_page(exc.message, exc.status, exc.error)

    @app.errorhandler(OAuth2Error)
    def _oauth(exc: OAuth2Error):
        if wants_json():
            return oauth_json(exc)
        # The description is for developers (English, protocol terms); people get plain words.
        return error_page(_("The service that sent you here made a request we cannot accept. "
                            "You have not been signed in. Go back to the service and try "
                            "again."), exc.status_code or 400, exc.error)

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        if wants_json():  # the passkey calls from passkey.js
            response = jsonify(error="invalid_request", error_description="CSRF token missing "
                               "or invalid; reload the page")
            response.status_code = 400
            return response
        return error_page(_("This form has expired or was not sent from our site. "
                            "Go back, reload the page and try again."), 400, "csrf")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc):
        if wants_json():
            response = jsonify(error="invalid_request", error_description="request too large")
            response.status_code = 413
            return response
        return error_page(_("What you sent is too large."), 413)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if wants_json():
            code = "invalid_request" if exc.code and exc.code < 500 else "server_error"
            if exc.code == 405:
                code = "invalid_request"
            response = jsonify(error=code, error_description=exc.name)
            response.status_code = exc.code or 500
            return response
        messages = {404: _("This page does not exist."),
                    405: _("This address does not accept that kind of request."),
                    429: _("Too many requests. Wait a moment and try again.")}
        default = _("We could not process this request. Go back and try again.")
        return error_page(messages.get(exc.code, default), exc.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        if wants_json():
            response = jsonify(error="server_error",
                               error_description="an unexpected error occurred")
            response.status_code = 500
            return response
        return error_page(_("Something went wrong on our side. Please try again later."), 500,
                          "server_error")
