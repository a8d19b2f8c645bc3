"""Authorization responses: query and form_post modes (OAuth 2.0 Form Post Response Mode),
each carrying `iss` (RFC 9207) so a client can detect mix-up attacks."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app, g, make_response, redirect, render_template

RESPONSE_MODES = ("query", "form_post")


class AuthorizationError(Exception):
    """An error that goes back to the client's (already validated) redirect URI."""

    def __init__(self, error: str, description: str = ""):
        super().__init__(error)
        self.error = error
        self.description = description


def add_query(uri: str, params: dict) -> str:
    """Append params, keeping the registered query exactly (OIDC redirect-uri-query-OK)."""
    parts = urlsplit(uri)
    extra = urlencode([(k, v) for k, v in params.items() if v is not None])
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def respond(redirect_uri: str, response_mode: str, params: dict):
    params = {**params, "iss": current_app.config["ISSUER"]}
    params = {k: v for k, v in params.items() if v is not None}
    if response_mode == "form_post":
        g.form_action = redirect_uri  # the CSP must let this page post to the client
        response = make_response(render_template("form_post.html", action=redirect_uri,
                                                 params=params))
        response.headers["Cache-Control"] = "no-store"
        return response
    response = redirect(add_query(redirect_uri, params), code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


def respond_error(redirect_uri: str, response_mode: str, state, error: AuthorizationError):
    params = {"error": error.error, "state": state}
    if error.description:
        params["error_description"] = error.description
    return respond(redirect_uri, response_mode, params)


def registered_query_intact(uri: str, registered: str) -> bool:
    return parse_qsl(urlsplit(uri).query) == parse_qsl(urlsplit(registered).query)
