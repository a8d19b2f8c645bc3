"""Relying-party clients: metadata validation (RFC 7591 / OIDC Registration), creation, keys.

Used by the registration endpoints (idp/oauth2/registration.py) and `flask clients create`.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749.util import scope_to_list
from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from . import crypto
from .client_mixin import hash_secret
from .extensions import db
from .fetch import FetchError, fetch_json
from .models import Client
from .oauth2.scopes import SUPPORTED_SCOPES

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SIGNING_ALGS = ("RS256", "ES256")
REQUEST_OBJECT_ALGS = ("RS256", "ES256", "none")
URI_FIELDS = ("logo_uri", "client_uri", "policy_uri", "tos_uri", "initiate_login_uri")
STRING_FIELDS = ("client_name", "application_type", "software_id", "software_version")
MAX_LIST = 20  # redirect URIs, contacts, request_uris per client


class ClientMetadataError(Exception):
    """RFC 7591 3.2.2: `error` is invalid_client_metadata or invalid_redirect_uri."""

    def __init__(self, description: str, error: str = "invalid_client_metadata"):
        super().__init__(description)
        self.error = error
        self.description = description


def _https_or_dev(uri: str, allow_http: bool, what: str, error="invalid_client_metadata"):
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.netloc:
        return parts
    if parts.scheme == "http" and parts.hostname and (
            allow_http or parts.hostname in ("127.0.0.1", "localhost", "::1")):
        return parts
    raise ClientMetadataError(f"{what} must be an https URI", error)


def _str_list(meta: dict, name: str) -> list[str]:
    value = meta.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ClientMetadataError(f"{name} must be an array of strings")
    if len(value) > MAX_LIST:
        raise ClientMetadataError(f"{name} has too many entries")
    return value


def _check_redirect_uris(meta: dict, allow_http: bool) -> list[str]:
    uris = _str_list(meta, "redirect_uris")
    native = meta.get("application_type") == "native"
    for uri in uris:
        parts = urlsplit(uri)
        if "#" in uri or parts.fragment:
            raise ClientMetadataError("redirect URIs must not have a fragment",
                                      "invalid_redirect_uri")
        if len(uri) > 2000 or any(c in uri for c in "\r\n\t "):
            raise ClientMetadataError("redirect URI is malformed", "invalid_redirect_uri")
        if native and parts.scheme not in ("https", "http") and "." in parts.scheme:
            continue  # private-use scheme of a native app (RFC 8252 7.1), reverse-DNS form
        if native and parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1"):
            continue  # loopback redirect of a native app (RFC 8252 7.3)
        _https_or_dev(uri, allow_http, "redirect URI", "invalid_redirect_uri")
    return uris


def sector_of(meta: dict, allow_private: bool = False) -> str:
    """OIDC Core 8.1: the sector is the sector_identifier_uri's host, else the redirect host."""
    if meta.get("sector_identifier_uri"):
        return urlsplit(meta["sector_identifier_uri"]).hostname or ""
    hosts = {urlsplit(u).hostname or urlsplit(u).scheme for u in meta.get("redirect_uris", [])}
    if len(hosts) > 1:
        raise ClientMetadataError("redirect URIs on several hosts need a sector_identifier_uri")
    return hosts.pop() if hosts else meta.get("client_name", "")


def _check_sector_document(meta: dict, allow_http: bool) -> None:
    uri = meta.get("sector_identifier_uri")
    if not uri:
        return
    if not isinstance(uri, str):
        raise ClientMetadataError("sector_identifier_uri must be a string")
    _https_or_dev(uri, allow_http, "sector_identifier_uri")
    try:
        listed = fetch_json(uri)
    except FetchError as exc:
        raise ClientMetadataError(f"sector_identifier_uri could not be fetched: {exc}") from exc
    if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
        raise ClientMetadataError("sector_identifier_uri must hold a JSON array of URIs")
    missing = [u for u in meta.get("redirect_uris", []) if u not in listed]
    if missing:
        raise ClientMetadataError("sector_identifier_uri does not list every redirect URI")


def _check_keys(meta: dict, allow_http: bool) -> None:
    if "jwks" in meta and "jwks_uri" in meta:
        raise ClientMetadataError("use jwks or jwks_uri, not both")
    if "jwks" in meta:
        listed = meta["jwks"].get("keys") if isinstance(meta["jwks"], dict) else None
        if not isinstance(listed, list) or not all(
                isinstance(k, dict) and k.get("kty") in ("RSA", "EC") for k in listed):
            raise ClientMetadataError("jwks must be a JWK Set of RSA or EC public keys")
        try:
            keyset = KeySet.import_key_set(meta["jwks"])
        except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ClientMetadataError("jwks is not a valid JWK Set") from exc
        if any(key.is_private for key in keyset.keys):
            raise ClientMetadataError("jwks must not contain private keys")
    if "jwks_uri" in meta:
        if not isinstance(meta["jwks_uri"], str):
            raise ClientMetadataError("jwks_uri must be a string")
        _https_or_dev(meta["jwks_uri"], allow_http, "jwks_uri")


def _check_choice(meta: dict, name: str, allowed, default=None):
    value = meta.get(name, default)
    if value is not None and value not in allowed:
        raise ClientMetadataError(f"{name} must be one of {', '.join(allowed)}")
    if value is not None:
        meta[name] = value


def validate_metadata(raw: dict, *, allow_http: bool) -> dict:
    """Return normalised metadata or raise ClientMetadataError. Unknown fields are dropped."""
    if not isinstance(raw, dict):
        raise ClientMetadataError("the request body must be a JSON object")
    if "\\u0000" in json.dumps(raw):  # PostgreSQL refuses NUL in text and JSON columns
        raise ClientMetadataError("metadata must not contain NUL characters")
    meta: dict = {}
    for name in STRING_FIELDS:
        if name in raw:
            if not isinstance(raw[name], str) or len(raw[name]) > 200:
                raise ClientMetadataError(f"{name} must be a short string")
            meta[name] = raw[name]
    for name in list(raw):  # localised names such as client_name#vi (RFC 7591 2.2)
        if name.startswith("client_name#") and isinstance(raw[name], str) and len(name) < 40:
            meta[name] = raw[name][:200]
    meta.setdefault("application_type", "web")
    _check_choice(meta, "application_type", ("web", "native"))
    for name in ("redirect_uris", "post_logout_redirect_uris", "contacts", "request_uris",
                 "default_acr_values"):
        if name in raw:
            meta[name] = _str_list(raw, name)
    meta["redirect_uris"] = _check_redirect_uris({**raw, **meta}, allow_http)
    for uri in meta.get("post_logout_redirect_uris", []):
        _check_redirect_uris({"redirect_uris": [uri], "application_type":
                              meta["application_type"]}, allow_http)
    for uri in meta.get("request_uris", []):
        _https_or_dev(uri, allow_http, "request_uris")
    for name in URI_FIELDS + ("jwks_uri", "sector_identifier_uri", "backchannel_logout_uri",
                              "frontchannel_logout_uri"):
        if name in raw:
            if not isinstance(raw[name], str) or len(raw[name]) > 2000:
                raise ClientMetadataError(f"{name} must be a URI")
            _https_or_dev(raw[name], allow_http, name)
            meta[name] = raw[name]
    for name in ("backchannel_logout_uri", "frontchannel_logout_uri"):
        if "#" in meta.get(name, ""):
            raise ClientMetadataError(f"{name} must not have a fragment")
    if "jwks" in raw:
        meta["jwks"] = raw["jwks"]
    _check_keys(meta, allow_http)

    grant_types = raw.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not grant_types or \
            any(g not in GRANT_TYPES for g in grant_types):
        raise ClientMetadataError(f"grant_types must be among {', '.join(GRANT_TYPES)}")
    meta["grant_types"] = list(dict.fromkeys(grant_types))
    response_types = raw.get("response_types", ["code"])
    if response_types != ["code"]:
        raise ClientMetadataError("only the response type 'code' is supported")
    meta["response_types"] = ["code"]
    if "authorization_code" in meta["grant_types"] and not meta["redirect_uris"]:
        raise ClientMetadataError("redirect_uris is required for the authorization code grant",
                                  "invalid_redirect_uri")

    _check_choice(meta | raw, "token_endpoint_auth_method", AUTH_METHODS)
    meta["token_endpoint_auth_method"] = raw.get("token_endpoint_auth_method",
                                                 "client_secret_basic")
    if meta["token_endpoint_auth_method"] not in AUTH_METHODS:
        raise ClientMetadataError(f"token_endpoint_auth_method must be one of "
                                  f"{', '.join(AUTH_METHODS)}")
    if meta["token_endpoint_auth_method"] == "private_key_jwt" and \
            not ("jwks" in meta or "jwks_uri" in meta):
        raise ClientMetadataError("private_key_jwt needs jwks or jwks_uri")
    if meta["token_endpoint_auth_method"] == "none" and "client_credentials" in meta["grant_types"]:
        raise ClientMetadataError("a public client cannot use client_credentials")
    for name, allowed in (("id_token_signed_response_alg", SIGNING_ALGS),
                          ("userinfo_signed_response_alg", SIGNING_ALGS),
                          ("request_object_signing_alg", REQUEST_OBJECT_ALGS),
                          ("token_endpoint_auth_signing_alg", SIGNING_ALGS)):
        if name in raw:
            if raw[name] not in allowed:
                raise ClientMetadataError(f"{name} must be one of {', '.join(allowed)}")
            meta[name] = raw[name]
    meta.setdefault("id_token_signed_response_alg", "RS256")
    if raw.get("request_object_signing_alg") in ("RS256", "ES256") and \
            not ("jwks" in meta or "jwks_uri" in meta):
        raise ClientMetadataError("signed request objects need jwks or jwks_uri")
    for name in ("require_auth_time", "backchannel_logout_session_required",
                 "frontchannel_logout_session_required", "require_pushed_authorization_requests"):
        if name in raw:
            if not isinstance(raw[name], bool):
                raise ClientMetadataError(f"{name} must be a boolean")
            meta[name] = raw[name]
    if "default_max_age" in raw:
        if not isinstance(raw["default_max_age"], int) or raw["default_max_age"] < 0:
            raise ClientMetadataError("default_max_age must be a non-negative integer")
        meta["default_max_age"] = raw["default_max_age"]
    scope = raw.get("scope", " ".join(SUPPORTED_SCOPES))
    if not isinstance(scope, str):
        raise ClientMetadataError("scope must be a string")
    meta["scope"] = " ".join(s for s in scope_to_list(scope) if s in SUPPORTED_SCOPES)
    # Subjects are pairwise for every registered client; only an operator grants public ones.
    meta["subject_type"] = "pairwise"
    meta["sector"] = sector_of(meta)
    _check_sector_document(meta, allow_http)
    return meta


def create_client(meta: dict, *, first_party=False, public_subject=False,
                  with_registration_token=False, client_id: str | None = None
                  ) -> tuple[Client, dict]:
    """Persist a client; returns it with the one-time secrets to show its owner. `client_id`
    fixes the identifier (operator set-ups such as the demo portals); random otherwise."""
    client = Client(client_id=client_id or crypto.random_token(18), client_metadata=meta,
                    first_party=first_party, public_subject=public_subject,
                    issued_at=int(time.time()))
    if public_subject:
        client.client_metadata = {**meta, "subject_type": "public"}
    secrets = {}
    if meta["token_endpoint_auth_method"] in ("client_secret_basic", "client_secret_post"):
        secrets["client_secret"] = crypto.random_token(32)
        client.secret_hash = hash_secret(secrets["client_secret"])
    if with_registration_token:
        secrets["registration_access_token"] = crypto.random_token(32)
        client.registration_token_hash = hash_secret(secrets["registration_access_token"])
    db.session.add(client)
    db.session.commit()
    return client, secrets


def client_keyset(client: Client, alg: str | None = None) -> KeySet:
    """The client's public keys from jwks or jwks_uri (through the guarded fetcher); with
    `alg`, only keys of its type, so a JWT signed with another algorithm cannot verify."""
    if client.meta("jwks"):
        keyset = KeySet.import_key_set(client.meta("jwks"))
    elif client.meta("jwks_uri"):
        keyset = KeySet.import_key_set(fetch_json(client.meta("jwks_uri")))
    else:
        raise FetchError("the client has no keys")
    if alg:
        kty = {"RS256": "RSA", "ES256": "EC"}.get(alg)
        keyset = KeySet([k for k in keyset.keys if k.key_type == kty])
    return keyset


def get_client(client_id) -> Client | None:
    # Client ids are printable; a NUL byte is also one PostgreSQL text refuses outright.
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64 \
            or not client_id.isprintable():
        return None
    return db.session.get(Client, client_id)


_CACHE: dict[tuple[str, str], tuple[float, Client]] = {}
_COLUMNS = tuple(c.key for c in Client.__table__.columns)


def get_client_cached(client_id) -> Client | None:
    """A read-only copy of the client for the token, userinfo, revocation and introspection
    paths, re-read after CLIENT_CACHE_SECONDS. The authorization endpoint and registration read
    the database every time, so a removed redirect URI stops working at once; a deleted client
    or a changed secret reaches other processes' token endpoints within that many seconds."""
    ttl = current_app.config["CLIENT_CACHE_SECONDS"]
    if ttl <= 0:
        return get_client(client_id)
    key = (current_app.config["DATABASE_URL"], client_id)
    hit = _CACHE.get(key) if isinstance(client_id, str) else None
    now = time.monotonic()
    if hit and hit[0] > now:
        return hit[1]
    row = get_client(client_id)
    if row is None:
        return None  # never cache a miss: a client registered elsewhere works at once
    copy = Client(**{name: getattr(row, name) for name in _COLUMNS})  # transient: thread-safe
    _CACHE[key] = (now + ttl, copy)
    return copy


def forget_client(client_id: str | None = None) -> None:
    """Drop one client (or all) from this process's cache after a change."""
    if client_id is None:
        _CACHE.clear()
    else:
        for key in [k for k in _CACHE if k[1] == client_id]:
            _CACHE.pop(key, None)


def client_view(client: Client) -> dict:
    """RFC 7591 3.2.1 response body (without secrets, which only creation returns)."""
    meta = {k: v for k, v in client.client_metadata.items() if k != "sector"}
    return {"client_id": client.client_id, "client_id_issued_at": client.issued_at,
            **meta, "subject_type": "public" if client.public_subject else "pairwise"}
