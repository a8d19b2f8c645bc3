"""The token side of the provider on Authlib: grants, client authentication, token issuing.

Grants: authorization_code (RFC 6749 4.1 with PKCE, RFC 7636), refresh_token with rotation and
reuse detection (RFC 9700 4.14.2), client_credentials (RFC 6749 4.4). Client authentication:
client_secret_basic, client_secret_post, private_key_jwt (RFC 7523, jti replay cache), none.
"""

from __future__ import annotations

import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import current_app
from joserfc.errors import JoseError

from .. import store
from ..clients import client_keyset, get_client_cached
from ..extensions import db
from ..fetch import FetchError
from ..models import Account
from . import id_token, tokens

TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class Code(dict):
    """An authorization code record from Redis, shaped as Authlib's AuthorizationCodeMixin."""

    def get_redirect_uri(self):
        return self["redirect_uri"]

    def get_scope(self):
        return self["scope"]

    def get_nonce(self):
        return self.get("nonce")

    def get_auth_time(self):
        return self.get("auth_time")

    def get_acr(self):
        return self.get("acr")

    def get_amr(self):
        return self.get("amr")


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def query_authorization_code(self, code, client):
        data = tokens.redeem_code(code)
        if not data or data["client_id"] != client.client_id:
            return None
        if data["expires_at"] < time.time():
            return None
        return Code(data)

    def delete_authorization_code(self, authorization_code):
        pass  # redeem_code already consumed it atomically

    def authenticate_user(self, authorization_code):
        account = db.session.get(Account, authorization_code["account_id"])
        return account if account and account.active else None

    def save_authorization_code(self, code, request):  # codes are issued by authorize.py
        raise RuntimeError("authorization codes are issued by idp.oauth2.authorize")


class PKCE(CodeChallenge):
    """PKCE at the token endpoint: S256 only, and no verifier without a challenge (downgrade)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)

    def get_authorization_code_challenge(self, authorization_code):
        return authorization_code.get("code_challenge")

    def get_authorization_code_challenge_method(self, authorization_code):
        return authorization_code.get("code_challenge_method")

    def validate_code_verifier(self, grant, result=None):
        verifier = grant.request.form.get("code_verifier")
        challenge = self.get_authorization_code_challenge(grant.request.authorization_code)
        if verifier and not challenge:
            raise InvalidGrantError("code_verifier sent but no code_challenge was")
        if challenge and not verifier:
            raise InvalidGrantError("code_verifier is required")
        return super().validate_code_verifier(grant, result)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        row = tokens.find_refresh_token(refresh_token)
        if row is None:
            return None
        if not tokens.refresh_token_usable(row):
            if row.used_at is not None and row.revoked_at is None:
                tokens.revoke_grant(row.grant_id, reason="refresh_reuse")
                db.session.commit()
            return None
        return RefreshRow(row)

    def authenticate_user(self, refresh_token):
        account = db.session.get(Account, refresh_token.row.account_id)
        return account if account and account.active else None

    def revoke_old_credential(self, refresh_token):
        pass  # _save_token claimed the old token in the transaction that stored the new one


class RefreshRow:
    """Adapter: a RefreshToken row as Authlib's TokenMixin."""

    def __init__(self, row):
        self.row = row

    def check_client(self, client):
        return self.row.client_id == client.client_id

    def get_scope(self):
        return self.row.scope

    def get_expires_in(self):
        return 0

    def is_expired(self):
        return False

    def is_revoked(self):
        return False


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")


class PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 client authentication with a short lifetime and a one-time jti."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self):
        issuer = current_app.config["ISSUER"]
        return [issuer, f"{issuer}/token", f"{issuer}/par", f"{issuer}/revoke",
                f"{issuer}/introspect"]

    def verify_claims(self, claims):
        super().verify_claims(claims)
        max_age = current_app.config["CLIENT_ASSERTION_MAX_AGE"]
        now = time.time()
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] > now + max_age:
            raise InvalidClientError(description="client assertion lives too long")

    def validate_jti(self, claims, jti):
        if not isinstance(jti, str) or len(jti) > 200:
            return False
        ttl = int(max(claims["exp"] - time.time(), 0)) + current_app.config["JWT_LEEWAY"] + 1
        return store.once(f"jti:{claims['sub']}:{jti}", ttl)

    def resolve_client_public_key(self, client):
        try:
            return client_keyset(client, client.meta("token_endpoint_auth_signing_alg"))
        except (FetchError, JoseError, ValueError, TypeError) as exc:
            raise InvalidClientError(description="client keys are unavailable") from exc

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            return super().process_assertion_claims(assertion, resolve_key)
        except (ValueError, TypeError) as exc:
            raise InvalidClientError(description="client assertion is invalid") from exc


def _client_secret_basic(query_client, request):
    """RFC 6749 2.3.1. Authlib's header parser raises on `Basic ` and on credentials that are
    not UTF-8; such a header authenticates nobody (-> invalid_client), it is not a crash."""
    try:
        return authenticate_client_secret_basic(query_client, request)
    except ValueError:  # includes UnicodeDecodeError
        return None


def _generate_token(grant_type, client, user=None, scope=None, expires_in=None,
                    include_refresh_token=True):
    # Values are filled in by save_token, which knows the request (grant, session, claims).
    return {"token_type": "Bearer", "scope": scope or "", "_grant_type": grant_type,
            "_refresh": bool(include_refresh_token and user is not None
                             and "offline_access" in (scope or "").split())}


def _save_token(token: dict, request) -> None:
    """Issue the access token, rotate/issue the refresh token, and add the ID token."""
    grant_type = token.pop("_grant_type")
    want_refresh = token.pop("_refresh")
    client = request.client
    account = request.user
    if grant_type == "authorization_code":
        code = request.authorization_code
        context = {k: code.get(k) for k in ("auth_time", "acr", "amr", "sid", "claims",
                                            "nonce")}
        grant_id = code["grant_id"]
    elif grant_type == "refresh_token":
        row = request.refresh_token.row
        context = dict(row.context)
        grant_id = row.grant_id
        # Atomic claim, in the same transaction as its successor: of two concurrent uses of
        # one token only one wins; the loser is a reuse and revokes the whole family.
        if not tokens.mark_refresh_used(row.token_hash, commit=False):
            db.session.rollback()
            tokens.revoke_grant(grant_id, reason="refresh_reuse")
            db.session.commit()
            raise InvalidGrantError("refresh token was already used")
    else:
        context, grant_id = {}, None
    at_data = {"client_id": client.client_id, "scope": token["scope"], "grant_id": grant_id,
               "account_id": account.id if account else None, "iat": int(time.time()),
               "claims": (context.get("claims") or {}).get("userinfo"),
               "sid": context.get("sid")}
    access_token, ttl = tokens.issue_access_token(at_data)
    token["access_token"] = access_token
    token["expires_in"] = ttl
    if want_refresh and account is not None:
        expires = request.refresh_token.row.expires_at if grant_type == "refresh_token" else None
        token["refresh_token"] = tokens.issue_refresh_token(
            grant_id=grant_id, client_id=client.client_id, account_id=account.id,
            scope=token["scope"], context=context, expires_at=expires)
    if grant_type == "refresh_token" or token.get("refresh_token"):
        db.session.commit()
    if account is not None and "openid" in token["scope"].split():
        token["id_token"] = id_token.build(
            client, account, scope=token["scope"], auth_time=context.get("auth_time"),
            acr=context.get("acr"), amr=context.get("amr") or [], sid=context.get("sid"),
            nonce=context.get("nonce") if grant_type == "authorization_code" else None,
            claims_request=(context.get("claims") or {}).get("id_token"),
            access_token=access_token)
    if not token["scope"]:
        token.pop("scope")


class Server(AuthorizationServer):
    def handle_error_response(self, request, error):
        response = super().handle_error_response(request, error)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response


def create_server(app) -> Server:
    server = Server()
    server.init_app(app, query_client=get_client_cached, save_token=_save_token)
    server.register_token_generator("default", _generate_token)
    server.register_grant(AuthorizationCodeGrant, [PKCE(required=False)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_client_auth_method("client_secret_basic", _client_secret_basic)
    server.register_client_auth_method("private_key_jwt", PrivateKeyJWT(leeway=30))
    app.extensions["authorization_server"] = server
    return server


def authorization_server() -> Server:
    return current_app.extensions["authorization_server"]


def token_endpoint():
    from flask import request

    if request.mimetype != "application/x-www-form-urlencoded":
        raise InvalidRequestError("the token request must be form-encoded")
    return authorization_server().create_token_response()
