"""One error type for the register API, rendered by one handler as JSON.

Body: `{"error": code, "error_description": text}` (RFC 6749 5.2 style). Unexpected exceptions
become a generic `server_error` without a stack trace; HTTP errors raised by Flask itself (404,
405, 413) get the same JSON shape.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: HTTP `status`, protocol `code`, English `description`."""

    def __init__(self, status: int, code: str, description: str,
                 headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.headers = headers or {}


class Unauthorized(ApiError):
    """The client assertion is missing or invalid (401, RFC 6750 3.1)."""

    def __init__(self, description: str, code: str = "invalid_client"):
        super().__init__(401, code, description,
                         {"WWW-Authenticate": f'Bearer error="{code}"'})


class BadRequest(ApiError):
    def __init__(self, description: str, code: str = "invalid_request"):
        super().__init__(400, code, description)


class Unavailable(ApiError):
    """The register cannot answer now (fault injection, outage, missing keys): retry later."""

    def __init__(self, description: str, retry_after: int = 1):
        super().__init__(503, "temporarily_unavailable", description,
                         {"Retry-After": str(retry_after)})


def error_response(status: int, code: str, description: str, headers: dict | None = None):
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.description, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed",
                413: "request_too_large"}.get(exc.code or 500, "invalid_request")
        headers = {}
        if exc.code == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        return error_response(exc.code or 500, code, exc.description or code, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error")
        return error_response(500, "server_error", "the register could not process the request")
