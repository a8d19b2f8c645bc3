"""Behaviour Authlib expects from a client (`authlib.oauth2.rfc6749.ClientMixin`)."""

from __future__ import annotations

import hashlib

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list

from .crypto import equal

# Endpoints other than /token that accept client authentication use the token method.
_AUTH_ENDPOINTS = ("token", "revoke", "introspect", "revocation", "introspection", "par")


def hash_secret(secret: str) -> str:
    """Client secrets are 256-bit random values, so one SHA-256 suffices (argon2 is for people)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ClientBehaviour(ClientMixin):
    client_id: str
    secret_hash: str | None
    client_metadata: dict

    def meta(self, name: str, default=None):
        return (self.client_metadata or {}).get(name, default)

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        uris = self.meta("redirect_uris", [])
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        allowed = set(scope_to_list(self.meta("scope", "")))
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.meta("redirect_uris", [])  # exact string match (RFC 9700)

    def check_client_secret(self, client_secret):
        if not self.secret_hash or not client_secret:
            return False
        return equal(self.secret_hash, hash_secret(client_secret))

    def check_endpoint_auth_method(self, method, endpoint):
        if endpoint in _AUTH_ENDPOINTS:
            return method == self.token_endpoint_auth_method
        return True

    @property
    def token_endpoint_auth_method(self) -> str:
        return self.meta("token_endpoint_auth_method", "client_secret_basic")

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def check_response_type(self, response_type):
        return response_type in self.meta("response_types", ["code"])

    def check_grant_type(self, grant_type):
        return grant_type in self.meta("grant_types", ["authorization_code"])

    @property
    def display_name(self) -> str:
        return self.meta("client_name") or self.client_id
