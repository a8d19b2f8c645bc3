"""UserInfo endpoint (OIDC Core 5.3): GET or POST, Bearer header or form body (RFC 6750 2.1-2.2),
JSON or a signed JWT when the client registered `userinfo_signed_response_alg`."""

from __future__ import annotations

import time

from flask import current_app, jsonify, request

from .. import keys
from ..clients import get_client_cached
from ..extensions import db
from ..identity import claims_for, subject_for
from ..models import Account
from . import tokens


def _challenge(error: str, description: str, status: int = 401):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    value = "Bearer" if error == "missing_token" else \
        f'Bearer error="{error}", error_description="{description}"'
    response.headers["WWW-Authenticate"] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer() -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    body = request.form.get("access_token") if request.method == "POST" and \
        request.mimetype == "application/x-www-form-urlencoded" else None
    if request.args.get("access_token"):
        return None, "access tokens in the URL are not accepted"  # RFC 9700 2.4 / RFC 6750 2.3
    if header and body:
        return None, "send the token once"
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, "use the Bearer scheme"
        return value.strip(), None
    return body, None


def userinfo_endpoint():
    token, problem = _bearer()
    if problem:
        return _challenge("invalid_request", problem, 400)
    if not token:
        return _challenge("invalid_token", "an access token is required")
    data = tokens.lookup_access_token(token)
    if data is None or not data.get("account_id") or \
            "openid" not in data.get("scope", "").split():
        return _challenge("invalid_token", "the access token is invalid or expired")
    client = get_client_cached(data["client_id"])
    account = db.session.get(Account, data["account_id"])
    if client is None or account is None or not account.active:
        return _challenge("invalid_token", "the access token is invalid or expired")
    claims = {"sub": subject_for(client, account),
              **claims_for(account, data["scope"], data.get("claims"))}
    alg = client.meta("userinfo_signed_response_alg")
    if alg:
        now = int(time.time())
        body = keys.sign({**claims, "iss": current_app.config["ISSUER"],
                          "aud": client.client_id, "iat": now}, alg)
        response = current_app.response_class(body, mimetype="application/jwt")
    else:
        response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response
