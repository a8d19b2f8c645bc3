"""Dynamic client registration (RFC 7591) and management (RFC 7592).

Open in development; in production a registration needs the initial access token. Each
registered client receives a registration access token for reading, updating and deleting
its own registration at `registration_client_uri`. Registrations are limited per client IP
(REGISTRATION_PER_IP per REGISTRATION_WINDOW, fixed window in Redis): 429 with Retry-After.
"""

from __future__ import annotations

from flask import current_app, jsonify, request

from .. import audit, store
from ..client_mixin import hash_secret
from ..clients import (
    ClientMetadataError,
    client_view,
    create_client,
    forget_client,
    get_client,
    validate_metadata,
)
from ..crypto import equal, random_token
from ..extensions import db


def _error(error: str, description: str, status: int = 400):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _json_body():
    if request.mimetype != "application/json":
        return None, _error("invalid_client_metadata", "the body must be application/json")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return None, _error("invalid_client_metadata", "the body must be a JSON object")
    return data, None


def _response(client, secrets: dict, status: int):
    issuer = current_app.config["ISSUER"]
    body = client_view(client)
    if "client_secret" in secrets:
        body["client_secret"] = secrets["client_secret"]
        body["client_secret_expires_at"] = 0
    if "registration_access_token" in secrets:
        body["registration_access_token"] = secrets["registration_access_token"]
    body["registration_client_uri"] = f"{issuer}/register/{client.client_id}"
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


# Scopes an operator grants (`flask clients create`); self-registration cannot claim them.
OPERATOR_SCOPES = ("national_id",)
SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def _validated(data: dict) -> dict:
    meta = validate_metadata(data, allow_http=current_app.config["ALLOW_HTTP_REDIRECT_URIS"])
    meta["scope"] = " ".join(s for s in meta["scope"].split() if s not in OPERATOR_SCOPES)
    return meta


def _registration_wait() -> int:
    """Count this attempt for the client IP; 0 when it may register, else seconds to wait."""
    conf = current_app.config
    return store.fixed_window(f"register-ip:{request.remote_addr}",
                              conf["REGISTRATION_PER_IP"], conf["REGISTRATION_WINDOW"])


def register_endpoint():
    conf = current_app.config
    wait = _registration_wait()  # every attempt counts, also initial access token guesses
    if wait:
        response = _error("rate_limited", "too many registrations from this address; "
                          "retry after the time in Retry-After", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    if not conf["REGISTRATION_OPEN"]:
        expected = conf["REGISTRATION_INITIAL_ACCESS_TOKEN"]
        if not expected or not equal(_bearer(), expected):
            return _error("invalid_token", "an initial access token is required", 401)
    data, problem = _json_body()
    if problem:
        return problem
    try:
        meta = _validated(data)
    except ClientMetadataError as exc:
        return _error(exc.error, exc.description)
    client, secrets = create_client(meta, with_registration_token=True)
    audit.record("client.registered", client_id=client.client_id)
    return _response(client, secrets, 201)


def _managed_client(client_id: str):
    client = get_client(client_id)
    token = _bearer()
    if client is None or not token or not client.registration_token_hash or \
            not equal(client.registration_token_hash, hash_secret(token)):
        return None  # RFC 7592 2: unknown client and bad token both answer 401
    return client


def manage_endpoint(client_id: str):
    client = _managed_client(client_id)
    if client is None:
        return _error("invalid_token", "the registration access token is invalid", 401)
    # RFC 7592 3: the response carries the (unchanged) registration access token again.
    presented = {"registration_access_token": _bearer()}
    if request.method == "GET":
        return _response(client, presented, 200)
    if request.method == "DELETE":
        db.session.delete(client)
        db.session.commit()
        forget_client(client_id)
        audit.record("client.deleted", client_id=client_id)
        return "", 204
    data, problem = _json_body()
    if problem:
        return problem
    if data.get("client_id") not in (None, client.client_id):
        return _error("invalid_client_metadata", "client_id cannot change")
    try:
        meta = _validated(data)
    except ClientMetadataError as exc:
        return _error(exc.error, exc.description)
    client.client_metadata = meta
    issued = dict(presented)
    if meta["token_endpoint_auth_method"] not in SECRET_METHODS:
        client.secret_hash = None  # a secret the method no longer uses must stop working
    elif not client.secret_hash:  # RFC 7592 2.2: the server may issue a new secret
        issued["client_secret"] = random_token(32)
        client.secret_hash = hash_secret(issued["client_secret"])
    db.session.commit()
    forget_client(client_id)
    audit.record("client.updated", client_id=client_id)
    return _response(client, issued, 200)
