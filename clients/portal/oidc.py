"""The portal's side of OpenID Connect, with Authlib's client: discovery, the IdP's keys,
a pushed authorization request (RFC 9126) with PKCE S256 (RFC 7636) and a nonce, the code
exchange and userinfo. Clients authenticate with private_key_jwt (RFC 7523, OIDC Core 9).
Every outbound call has a timeout; failures become IdPUnavailable or IdPRefused.
"""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ASSERTION_LIFETIME = 60  # seconds; the IdP refuses client assertions that live long
REFETCH_INTERVAL = 10  # seconds between JWKS fetches triggered by an unknown kid


class IdPUnavailable(Exception):
    """The IdP did not answer (network, timeout, 5xx, not JSON)."""


class IdPRefused(Exception):
    """The IdP answered with an OAuth error (PAR or token endpoint)."""

    def __init__(self, error: str, description: str = ""):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class ShortPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's private_key_jwt with our key's kid in the header and a short lifetime; the
    audience is the endpoint called (the IdP accepts its issuer and each endpoint)."""

    alg = "ES256"

    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(auth.client_secret, client_id=auth.client_id,
                                    token_endpoint=token_endpoint, alg=self.alg,
                                    header={"kid": auth.client_secret.kid},
                                    expires_in=ASSERTION_LIFETIME)


def _get_json(url: str, timeout: float) -> dict:
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise IdPUnavailable(f"GET {url}: {exc}") from exc
    if not isinstance(body, dict):
        raise IdPUnavailable(f"GET {url}: not a JSON object")
    return body


class Provider:
    """The IdP's discovery document and JWKS, cached; keys re-read when a kid is unknown."""

    def __init__(self, conf: dict):
        self.issuer = conf["ISSUER"]
        self.timeout = conf["HTTP_TIMEOUT"]
        self.jwks_ttl = conf["JWKS_CACHE_SECONDS"]
        self._meta: dict | None = None
        self._keys: tuple[float, KeySet] | None = None
        self._refetched_at = float("-inf")
        self._lock = threading.Lock()

    def metadata(self) -> dict:
        if self._meta is None:
            meta = _get_json(f"{self.issuer}/.well-known/openid-configuration", self.timeout)
            # OIDC Discovery 4.3: the document must name the issuer we asked.
            if meta.get("issuer") != self.issuer:
                raise IdPUnavailable("discovery issuer does not match the configured issuer")
            self._meta = meta
        return self._meta

    def keyset(self, kid: str | None = None) -> KeySet:
        """The IdP's public keys; fetched again if `kid` is not among the cached ones (a key
        rotation), at most once per call."""
        with self._lock:
            now = time.monotonic()
            cached = self._keys
            fresh = cached and cached[0] > now
            known = cached and (kid is None or any(k.kid == kid for k in cached[1].keys))
            if fresh and known:
                return cached[1]
            if fresh:  # an unknown kid: a rotation, or a forged token with a made-up kid,
                # which must not make us hammer the IdP's JWKS
                if now - self._refetched_at < REFETCH_INTERVAL:
                    return cached[1]
                self._refetched_at = now
            try:
                keyset = KeySet.import_key_set(
                    _get_json(self.metadata()["jwks_uri"], self.timeout))
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise IdPUnavailable(f"the IdP's JWKS is unusable: {exc}") from exc
            self._keys = (now + self.jwks_ttl, keyset)
            return keyset


class OIDCClient:
    """One relying party: builds the Authlib session for each exchange."""

    def __init__(self, conf: dict, provider: Provider):
        self.conf = conf
        self.provider = provider
        self.client_id = conf["CLIENT_ID"]
        self.redirect_uri = f"{conf['BASE_URL']}/callback"

    def _session(self, token: dict | None = None) -> OAuth2Session:
        session = OAuth2Session(self.client_id, self.conf["CLIENT_KEY"],
                                token_endpoint_auth_method="private_key_jwt",
                                scope=self.conf["SCOPE"], redirect_uri=self.redirect_uri,
                                code_challenge_method="S256", token=token,
                                default_timeout=self.conf["HTTP_TIMEOUT"])
        session.register_client_auth_method(ShortPrivateKeyJWT())
        session.trust_env = False  # no proxy or netrc from the environment
        return session

    def start(self, *, acr_values: list[str], ui_locales: str,
              max_age: int | None = None) -> tuple[str, dict]:
        """Push the authorization request; returns the URL to send the browser to and what
        the callback needs (state, nonce, code_verifier, what was asked)."""
        meta = self.provider.metadata()
        pending = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
                   "code_verifier": secrets.token_urlsafe(48), "acr_values": acr_values,
                   "max_age": max_age, "started": time.time()}
        extra = {"nonce": pending["nonce"], "ui_locales": ui_locales}
        if acr_values:
            extra["acr_values"] = " ".join(acr_values)
        if max_age is not None:
            extra["max_age"] = str(max_age)
        with self._session() as session:
            # Authlib builds the request (PKCE S256 challenge included); we push its parameters.
            url, _ = session.create_authorization_url(
                meta["authorization_endpoint"], state=pending["state"],
                code_verifier=pending["code_verifier"], **extra)
            params = dict(parse_qsl(urlsplit(url).query))
            endpoint = meta["pushed_authorization_request_endpoint"]
            try:
                response = session.post(endpoint, data=params, withhold_token=True,
                                        auth=session.client_auth("private_key_jwt"))
            except requests.RequestException as exc:
                raise IdPUnavailable(f"PAR: {exc}") from exc
        body = _json_or_none(response)
        if response.status_code != 201 or not body or "request_uri" not in body:
            if body and response.status_code < 500 and isinstance(body.get("error"), str):
                raise IdPRefused(body["error"], str(body.get("error_description", "")))
            raise IdPUnavailable(f"PAR answered {response.status_code}")
        query = urlencode({"client_id": self.client_id, "request_uri": body["request_uri"]})
        return f"{meta['authorization_endpoint']}?{query}", pending

    def exchange(self, code: str, code_verifier: str) -> dict:
        """The token endpoint (OIDC Core 3.1.3): the code and the PKCE verifier."""
        meta = self.provider.metadata()
        with self._session() as session:
            try:
                token = session.fetch_token(meta["token_endpoint"], grant_type="authorization_code",
                                            code=code, code_verifier=code_verifier,
                                            redirect_uri=self.redirect_uri)
            except OAuthError as exc:
                raise IdPRefused(exc.error or "invalid_grant", exc.description or "") from exc
            except (requests.RequestException, ValueError) as exc:
                raise IdPUnavailable(f"token endpoint: {exc}") from exc
        if not isinstance(token, dict) or not token.get("id_token") or \
                not token.get("access_token"):
            raise IdPRefused("invalid_token_response", "no ID token or access token")
        return dict(token)

    def userinfo(self, access_token: str) -> dict:
        """OIDC Core 5.3 with the access token as a Bearer header."""
        meta = self.provider.metadata()
        with self._session(token={"access_token": access_token, "token_type": "Bearer"}) as s:
            try:
                response = s.get(meta["userinfo_endpoint"],
                                 headers={"Accept": "application/json"})
            except requests.RequestException as exc:
                raise IdPUnavailable(f"userinfo: {exc}") from exc
        body = _json_or_none(response)
        if response.status_code != 200 or body is None:
            raise IdPUnavailable(f"userinfo answered {response.status_code}")
        return body


def _json_or_none(response: requests.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
