"""One place that turns every error into the right response.

Protocol errors (Authlib `OAuth2Error` subclasses, one class per protocol code) become JSON
with their status; page errors become a translated HTML page; anything unexpected becomes a
generic `server_error` without a stack trace (it is logged server-side).

A backend outage (Redis or PostgreSQL unreachable, restarting, or a pooled connection cut) is
not a bug: it is answered 503 with Retry-After, `temporarily_unavailable` in JSON on API paths
and a translated page elsewhere, after the database session is rolled back. Clients retry; the
next request gets a fresh connection (pool_pre_ping) once the backend is back.
"""

from __future__ import annotations

import logging

import redis
from authlib.oauth2 import OAuth2Error
from flask import current_app, jsonify, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger(__name__)

# Exceptions that mean "a backend is unreachable right now", not "a bug": answered 503.
# (redis' BusyLoadingError, a Redis still loading its AOF after a restart, is a ConnectionError.)
BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    sa_exc.OperationalError, sa_exc.DisconnectionError, sa_exc.TimeoutError)
try:
    import psycopg
except ImportError:  # SQLite-only installs
    pass
else:
    BACKEND_ERRORS += (psycopg.OperationalError,)
RETRY_AFTER = 5  # seconds: a restart of Redis or PostgreSQL takes about that long
UNAVAILABLE = "The service is temporarily unavailable. Try again in a moment."


def _unavailable_text() -> str:
    return _("The service is temporarily unavailable. Try again in a moment.")

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


def backend_outage(exc: BaseException | None) -> BaseException | None:
    """The backend error behind `exc` (itself, its cause or context, or the original exception
    of a 500), or None when `exc` is not an outage."""
    seen = 0
    while exc is not None and seen < 6:
        if isinstance(exc, BACKEND_ERRORS) or \
                (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated):
            return exc
        exc = getattr(exc, "original_exception", None) or exc.__cause__ or exc.__context__
        seen += 1
    return None


def unavailable(exc: BaseException):
    """503 + Retry-After for a backend outage; the database session is rolled back."""
    from .extensions import db

    log.warning("backend unavailable on %s %s: %s", request.method, request.path,
                exc.__class__.__name__)
    try:
        db.session.rollback()
    except Exception:  # a dead connection: the pool invalidates it anyway
        log.debug("rollback after a backend outage failed", exc_info=True)
    if wants_json():
        description = UNAVAILABLE  # for developers, like the protocol errors: English
        if request.path.startswith("/api/onboarding/"):  # that API speaks the caller's language
            from ekyc.api import request_locale

            with force_locale(request_locale()):
                description = _unavailable_text()
        response = jsonify(error="temporarily_unavailable", error_description=description)
        response.status_code = 503
        response.headers["Cache-Control"] = "no-store"
    else:
        try:
            body, status = error_page(_unavailable_text(), 503, "temporarily_unavailable")
        except Exception:  # noqa: BLE001  (the page itself needed the backend: plain text)
            body, status = UNAVAILABLE, 503
        response = current_app.make_response((body, status))
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


def register(app) -> None:
    for kind in BACKEND_ERRORS:
        app.register_error_handler(kind, unavailable)

    @app.errorhandler(sa_exc.DBAPIError)
    def _database(exc: sa_exc.DBAPIError):
        if exc.connection_invalidated:  # a disconnect the driver reported as another class
            return unavailable(exc)
        return _unexpected(exc)

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
        outage = backend_outage(getattr(exc, "original_exception", None))
        if outage is not None:  # raised after the view (an after_request hook): still a 503
            return unavailable(outage)
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
        outage = backend_outage(exc)
        if outage is not None:  # wrapped by a library (e.g. Authlib) or chained
            return unavailable(outage)
        log.exception("unexpected error on %s %s", request.method, request.path)
        if wants_json():
            response = jsonify(error="server_error",
                               error_description="an unexpected error occurred")
            response.status_code = 500
            return response
        return error_page(_("Something went wrong on our side. Please try again later."), 500,
                          "server_error")
