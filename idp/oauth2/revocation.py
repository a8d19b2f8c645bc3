"""Token revocation (RFC 7009) and introspection (RFC 7662), both client-authenticated."""

from __future__ import annotations

import calendar

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import jsonify, request

from .. import audit
from ..crypto import sha256_b64
from ..extensions import db
from ..identity import subject_for
from ..models import Account, RefreshToken
from . import tokens
from .server import TOKEN_AUTH_METHODS, authorization_server


def _client(methods):
    server = authorization_server()
    return server.authenticate_client(server.create_oauth2_request(request), methods,
                                      "revoke" if request.path.endswith("revoke")
                                      else "introspect")


def _token_param() -> str:
    if request.mimetype != "application/x-www-form-urlencoded":
        raise InvalidRequestError("the request must be form-encoded")
    token = request.form.get("token")
    if not token:
        raise InvalidRequestError("token is required")
    return token


def revocation_endpoint():
    client = _client(TOKEN_AUTH_METHODS)
    token = _token_param()
    hint = request.form.get("token_type_hint")
    if hint not in (None, "access_token", "refresh_token"):
        return jsonify(error="unsupported_token_type"), 400
    data = tokens.lookup_access_token(token)
    if data and data["client_id"] == client.client_id:
        tokens.revoke_access_token(token)
        audit.record("token.revoked", client_id=client.client_id, kind="access_token")
    row = tokens.find_refresh_token(token)
    if row is not None and row.client_id == client.client_id:
        tokens.revoke_grant(row.grant_id, reason="revoked_by_client")
        db.session.commit()
    response = jsonify({})  # RFC 7009 2.2: 200 whether or not the token was valid
    response.headers["Cache-Control"] = "no-store"
    return response


def introspection_endpoint():
    client = _client([m for m in TOKEN_AUTH_METHODS if m != "none"])
    token = _token_param()
    body = {"active": False}
    data = tokens.lookup_access_token(token)
    if data is not None:
        body = {"active": True, "client_id": data["client_id"], "scope": data["scope"],
                "token_type": "Bearer", "exp": data["exp"], "iat": data["iat"]}
        account_id = data.get("account_id")
    else:
        row = db.session.get(RefreshToken, sha256_b64(token)) if len(token) < 200 else None
        account_id = None
        if row is not None and tokens.refresh_token_usable(row):
            body = {"active": True, "client_id": row.client_id, "scope": row.scope,
                    "token_type": "refresh_token",
                    "exp": calendar.timegm(row.expires_at.timetuple())}
            account_id = row.account_id
    # A client learns only about its own tokens (RFC 7662 4: no token scanning).
    if body["active"] and body["client_id"] != client.client_id:
        body = {"active": False}
    elif body["active"] and account_id:
        account = db.session.get(Account, account_id)
        if account is not None:
            body["sub"] = subject_for(client, account)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
