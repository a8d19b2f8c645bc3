"""Routes of the provider. Each delegates to the module named after its specification."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .. import keys
from ..extensions import csrf
from . import authorize, discovery, logout, par, registration, revocation, server, userinfo

bp = Blueprint("oauth2", __name__)


def _json(body: dict, max_age: int = 300):
    response = jsonify(body)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/.well-known/openid-configuration")
def openid_configuration():
    return _json(discovery.metadata())


@bp.get("/.well-known/oauth-authorization-server")
def oauth_authorization_server():
    return _json(discovery.metadata())


@bp.get("/jwks")
def jwks():
    return _json(keys.jwks(), max_age=60)


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt  # a cross-site request by design; protected by state/PKCE, not a form token
def authorize_endpoint():
    return authorize.authorization_endpoint()


@bp.get("/authorize/resume")
def authorize_resume():
    return authorize.resume(request.args.get("interaction"))


@bp.post("/token")
@csrf.exempt
def token():
    return server.token_endpoint()


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo_route():
    return userinfo.userinfo_endpoint()


@bp.post("/revoke")
@csrf.exempt
def revoke():
    return revocation.revocation_endpoint()


@bp.post("/introspect")
@csrf.exempt
def introspect():
    return revocation.introspection_endpoint()


@bp.post("/par")
@csrf.exempt
def par_route():
    return par.push_endpoint()


@bp.post("/register")
@csrf.exempt
def register():
    return registration.register_endpoint()


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@csrf.exempt
def register_manage(client_id):
    return registration.manage_endpoint(client_id)


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt  # RP-initiated; the confirmation page that follows carries a CSRF token
def end_session():
    return logout.end_session_endpoint()


@bp.post("/logout/confirm")
def logout_confirm():
    return logout.confirm()
