"""Security headers on every response (CSP with frame-ancestors 'none', no-referrer on auth
pages, nosniff, HSTS outside development)."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import abort, current_app, g, request

AUTH_PATHS = ("/authorize", "/login", "/consent", "/select-account", "/logout", "/account",
              "/ops")  # the operator console: personal data on every page


def nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def apply_headers(response):
    form_action = ["'self'"]
    if g.get("form_action"):
        form_action.append(_origin(g.form_action))
    frames = " ".join(sorted({_origin(u) for u in g.get("frame_sources", [])})) or "'none'"
    csp = ["default-src 'none'", "img-src 'self' https: data:", "style-src 'self'",
           f"script-src 'self' 'nonce-{nonce()}'", "connect-src 'self'",
           f"form-action {' '.join(form_action)}", f"frame-src {frames}",
           "frame-ancestors 'none'", "base-uri 'none'"]
    response.headers.setdefault("Content-Security-Policy", "; ".join(csp))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(self), geolocation=()")
    if request.path.startswith(AUTH_PATHS) or g.get("form_action"):
        response.headers["Referrer-Policy"] = "no-referrer"
    else:
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if current_app.config["IDP_ENV"] == "production":
        response.headers.setdefault("Strict-Transport-Security",
                                    "max-age=31536000; includeSubDomains")
    if request.path.startswith(AUTH_PATHS):
        response.headers["Cache-Control"] = "no-store"
    return response


def _holds_nul(multidict) -> bool:
    return any("\x00" in value for _, values in multidict.lists() for value in values)


def refuse_nul_bytes() -> None:
    """400 for a NUL byte in the path, the query or an urlencoded form. No legitimate value
    holds one, and PostgreSQL refuses them in text columns, so without this a NUL reaching a
    query was a 500 on PostgreSQL while SQLite accepted it (found by the fuzz test). Multipart
    uploads and JSON bodies are left to their endpoints, which answer in their own terms."""
    if "\x00" in request.path or _holds_nul(request.args):
        abort(400)
    if request.mimetype == "application/x-www-form-urlencoded" and _holds_nul(request.form):
        abort(400)
