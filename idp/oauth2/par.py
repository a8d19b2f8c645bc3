"""Pushed Authorization Requests (RFC 9126).

The client authenticates at /par and pushes its parameters; we validate them like an
authorization request and answer a one-time `request_uri` that lives PAR_TTL seconds.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import current_app, jsonify, request
from werkzeug.datastructures import MultiDict

from .. import store
from ..crypto import random_token
from ..errors import PageError
from . import jar
from .responses import AuthorizationError

URN_PREFIX = "urn:ietf:params:oauth:request_uri:"


def take(request_uri: str, client_id: str) -> dict | None:
    """Consume a pushed request (single use); None if unknown, expired or another client's."""
    stored = store.take_json(f"par:{request_uri[len(URN_PREFIX):]}")
    if not stored or stored.get("client_id") != client_id:
        return None
    return stored["params"]


def _json_error(error: str, description: str):
    response = jsonify(error=error, error_description=description)
    response.status_code = 400
    response.headers["Cache-Control"] = "no-store"
    return response


def push_endpoint():
    from .authz_request import RedirectedError, validate
    from .server import authorization_server

    server = authorization_server()
    client = server.authenticate_client(server.create_oauth2_request(request),
                                        ["client_secret_basic", "client_secret_post",
                                         "private_key_jwt", "none"], "par")
    if "request_uri" in request.form:
        raise InvalidRequestError("request_uri is not allowed at the PAR endpoint")
    form = MultiDict(request.form)
    for name in ("client_assertion", "client_assertion_type", "client_secret"):
        form.pop(name, None)
    if form.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequestError("client_id does not match the authenticated client")
    form["client_id"] = client.client_id
    # RFC 9126 2.3: every error is JSON here, never a redirect or a page.
    try:
        if form.get("request"):  # RFC 9126 3 / RFC 9101 5: only the object's parameters count
            conf = current_app.config
            form = MultiDict({**jar.decode_request_object(form["request"], client,
                                                          conf["ISSUER"], conf["JWT_LEEWAY"]),
                              "client_id": client.client_id})
        validate(form, allow_par=False, require_par_check=False)
    except RedirectedError as exc:
        return _json_error(exc.error.error, exc.error.description)
    except AuthorizationError as exc:
        return _json_error(exc.error, exc.description)
    except PageError as exc:
        return _json_error(exc.error, exc.message)
    handle = random_token(32)
    ttl = current_app.config["PAR_TTL"]
    params = {k: v for k, v in form.items()}  # what was validated is what /authorize uses
    store.put_json(f"par:{handle}", {"client_id": client.client_id, "params": params}, ttl)
    response = jsonify(request_uri=URN_PREFIX + handle, expires_in=ttl)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response
