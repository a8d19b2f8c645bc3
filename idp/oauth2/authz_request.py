"""Validation of an authorization request (RFC 6749 4.1.1, OIDC Core 3.1.2.1), as ordered checks.

Until the client and its redirect URI are known to be good, failures are pages (`PageError`),
never redirects (no open redirector). After that, failures go back to the client as
`RedirectedError`, carrying where and how to send them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from flask import current_app
from flask_babel import gettext as _
from joserfc.errors import JoseError

from ..clients import get_client
from ..errors import PageError
from ..models import Client
from . import jar, par
from .id_token import verify_hint
from .responses import RESPONSE_MODES, AuthorizationError
from .scopes import ACR_VALUES, SUPPORTED_SCOPES

PROMPTS = ("none", "login", "consent", "select_account")
DISPLAYS = ("page", "popup", "touch", "wap")
SINGLE = ("client_id", "redirect_uri", "response_type", "response_mode", "state", "scope",
          "nonce", "prompt", "max_age", "code_challenge", "code_challenge_method", "claims",
          "request", "request_uri", "id_token_hint", "login_hint", "acr_values", "ui_locales",
          "claims_locales", "display")


@dataclass
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    response_mode: str = "query"
    state: str | None = None
    scope: str = ""
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    prompt: list = field(default_factory=list)
    max_age: int | None = None
    claims: dict = field(default_factory=dict)
    acr_values: list = field(default_factory=list)
    ui_locales: str | None = None
    claims_locales: str | None = None
    login_hint: str | None = None
    hint_sub: str | None = None  # `sub` of a valid id_token_hint
    display: str = "page"
    via_par: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AuthorizationRequest:
        return cls(**data)

    def _acr_claim(self) -> tuple[list[str], bool]:
        """Known values of the `acr` ID token claim request (OIDC Core 5.5.1.1), essential?"""
        acr = (self.claims or {}).get("id_token", {}).get("acr")
        if not isinstance(acr, dict):
            return [], False
        values = acr.get("values")
        if not isinstance(values, list):
            values = [acr["value"]] if "value" in acr else []
        return [v for v in values if isinstance(v, str) and v in ACR_VALUES], \
            acr.get("essential") is True

    def essential_acr(self) -> list[str]:
        values, essential = self._acr_claim()
        return values if essential else []

    def required_acr(self) -> list[str]:
        """acr values the session must satisfy, in the portal's order of preference: an
        essential acr claim, else acr_values (treated as a requirement, not a wish)."""
        return self.essential_acr() or list(self.acr_values)

    def preferred_acr(self) -> list[str]:
        """Values to choose the ID token's acr from: the required ones, else a voluntary claim."""
        return self.required_acr() or self._acr_claim()[0]


class RedirectedError(Exception):
    """An AuthorizationError with what is needed to send it to the client."""

    def __init__(self, error: AuthorizationError, redirect_uri: str, response_mode: str, state):
        super().__init__(error.error)
        self.error = error
        self.redirect_uri = redirect_uri
        self.response_mode = response_mode
        self.state = state


def read_params(multi) -> tuple[dict, list[str]]:
    """Flatten request parameters; collect names sent more than once (RFC 6749 3.1)."""
    params, repeated = {}, []
    limit = current_app.config["MAX_PARAM_LENGTH"]
    for name in multi:
        values = multi.getlist(name)
        if len(values) > 1 and name in SINGLE:
            repeated.append(name)
        value = values[0]
        if name in ("request", "claims"):
            if len(value) > jar.MAX_OBJECT_LENGTH:
                raise PageError(_("The request is too large."), 400)
        elif len(value) > limit:
            raise PageError(_("The request is too large."), 400)
        params[name] = value
    return params, repeated


def _load_client(params: dict) -> Client:
    client = get_client(params.get("client_id"))
    if client is None:
        raise PageError(_("The service that sent you here is not registered with us. "
                          "You have not been signed in."), 400, "invalid_client")
    return client


def _redirect_uri(params: dict, client: Client) -> str:
    uri = params.get("redirect_uri")
    if not uri:
        raise PageError(_("The service that sent you here did not say where to return."), 400,
                        "invalid_request")
    if not client.check_redirect_uri(uri):
        raise PageError(_("The return address of the service that sent you here is not "
                          "registered. You have not been signed in."), 400, "invalid_request")
    return uri


def _resolve_objects(params: dict, client: Client, allow_par: bool) -> tuple[dict, bool, object]:
    """PAR request_uri, request object or request_uri by value/reference. Returns merged params,
    whether PAR was used, and an AuthorizationError to raise once the redirect is known."""
    conf = current_app.config
    request_uri = params.get("request_uri")
    if request_uri and request_uri.startswith(par.URN_PREFIX):
        if not allow_par:
            return params, False, AuthorizationError("invalid_request", "nested request_uri")
        stored = par.take(request_uri, client.client_id)
        if stored is None:
            raise PageError(_("This sign-in link has expired or was already used. "
                              "Go back to the service and start again."), 400,
                            "invalid_request_uri")
        return {**stored, "client_id": client.client_id}, True, None
    try:
        if params.get("request") and request_uri:
            raise AuthorizationError("invalid_request", "request and request_uri both sent")
        token = params.get("request")
        if request_uri:
            token = jar.fetch_request_uri(request_uri, client)
        if token:
            merged = {**params, **jar.decode_request_object(token, client, conf["ISSUER"],
                                                            conf["JWT_LEEWAY"])}
            merged.pop("request", None)
            merged.pop("request_uri", None)
            return merged, False, None
    except AuthorizationError as error:
        return params, False, error
    return params, False, None


def _check_response(params: dict) -> str:
    mode = params.get("response_mode") or "query"
    if params.get("response_type") != "code":
        raise AuthorizationError("unsupported_response_type" if params.get("response_type")
                                 else "invalid_request", "only response_type=code is supported")
    return mode


def _check_scope(params: dict, client: Client) -> str:
    requested = params.get("scope", "").split()
    if "openid" not in requested:
        raise AuthorizationError("invalid_scope", "the openid scope is required")
    scope = client.get_allowed_scope(" ".join(s for s in requested if s in SUPPORTED_SCOPES))
    if "openid" not in scope.split():
        raise AuthorizationError("invalid_scope", "the client may not use the openid scope")
    return scope


def _check_pkce(params: dict, client: Client) -> tuple[str | None, str | None]:
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if not challenge:
        if method:
            raise AuthorizationError("invalid_request", "code_challenge is missing")
        if client.is_public:
            raise AuthorizationError("invalid_request", "PKCE (S256) is required")
        return None, None
    method = method or "plain"
    if method != "S256":
        raise AuthorizationError("invalid_request", "code_challenge_method must be S256")
    if not (43 <= len(challenge) <= 128) or not all(c.isalnum() or c in "-._~"
                                                     for c in challenge):
        raise AuthorizationError("invalid_request", "code_challenge is malformed")
    return challenge, method


def _check_prompt(params: dict) -> list[str]:
    prompt = params.get("prompt", "").split()
    if any(p not in PROMPTS for p in prompt):
        raise AuthorizationError("invalid_request", "unsupported prompt value")
    if "none" in prompt and len(prompt) > 1:
        raise AuthorizationError("invalid_request", "prompt=none cannot be combined")
    return prompt


def _check_max_age(params: dict, client: Client) -> int | None:
    raw = params.get("max_age")
    if raw is None or raw == "":
        return client.meta("default_max_age")
    if not raw.isdigit() or len(raw) > 10:
        raise AuthorizationError("invalid_request", "max_age must be a non-negative integer")
    return int(raw)


def _check_claims(params: dict) -> dict:
    raw = params.get("claims")
    if not raw:
        return {}
    try:
        claims = json.loads(raw)
    except ValueError as exc:
        raise AuthorizationError("invalid_request", "claims is not valid JSON") from exc
    if not isinstance(claims, dict) or any(k not in ("id_token", "userinfo") or
                                           not isinstance(v, dict) for k, v in claims.items()):
        raise AuthorizationError("invalid_request", "claims must name id_token and userinfo")
    for member in claims.values():
        for value in member.values():
            if value is not None and not isinstance(value, dict):
                raise AuthorizationError("invalid_request", "claims entries must be objects")
    return claims


def _check_id_token_hint(params: dict, client: Client) -> str | None:
    hint = params.get("id_token_hint")
    if not hint:
        return None
    try:
        claims = verify_hint(hint)
    except (JoseError, ValueError, TypeError) as exc:
        raise AuthorizationError("invalid_request", "id_token_hint is invalid") from exc
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if claims.get("iss") != current_app.config["ISSUER"] or client.client_id not in auds:
        raise AuthorizationError("invalid_request", "id_token_hint was not issued to this client")
    return claims.get("sub")


def _check_acr(params: dict, client: Client) -> list[str]:
    """Known acr_values (unknown ones are ignored, OIDC Core 3.1.2.1), else the client's
    registered default_acr_values (OIDC Registration 2)."""
    asked = params.get("acr_values")
    values = asked.split() if asked else client.meta("default_acr_values") or []
    return list(dict.fromkeys(a for a in values if isinstance(a, str) and a in ACR_VALUES))


def _check_strings(params: dict) -> None:
    for name in ("state", "nonce", "login_hint", "ui_locales", "claims_locales"):
        value = params.get(name)
        if value is not None and any(ord(c) < 0x20 for c in value):
            raise AuthorizationError("invalid_request", f"{name} contains control characters")
    if params.get("display") and params["display"] not in DISPLAYS:
        raise AuthorizationError("invalid_request", "unsupported display value")


def validate(multi, *, allow_par: bool = True, require_par_check: bool = True
             ) -> tuple[AuthorizationRequest, Client]:
    """Run every check in order and return the validated request and its client."""
    params, repeated = read_params(multi)
    client = _load_client(params)
    params, via_par, deferred = _resolve_objects(params, client, allow_par)
    redirect_uri = _redirect_uri(params, client)
    mode = params.get("response_mode") or "query"
    if mode not in RESPONSE_MODES:
        mode = "query"
        deferred = deferred or AuthorizationError("invalid_request", "unsupported response_mode")
    try:
        if deferred:
            raise deferred
        if repeated:
            raise AuthorizationError("invalid_request", f"repeated parameter: {repeated[0]}")
        _check_response(params)
        if require_par_check and client.meta("require_pushed_authorization_requests") \
                and not via_par:
            raise AuthorizationError("invalid_request", "this client must use PAR (RFC 9126)")
        _check_strings(params)
        challenge, method = _check_pkce(params, client)
        areq = AuthorizationRequest(
            client_id=client.client_id, redirect_uri=redirect_uri, response_mode=mode,
            state=params.get("state"), scope=_check_scope(params, client),
            nonce=params.get("nonce"), code_challenge=challenge, code_challenge_method=method,
            prompt=_check_prompt(params), max_age=_check_max_age(params, client),
            claims=_check_claims(params), acr_values=_check_acr(params, client),
            ui_locales=params.get("ui_locales"), claims_locales=params.get("claims_locales"),
            login_hint=params.get("login_hint"), hint_sub=_check_id_token_hint(params, client),
            display=params.get("display") or "page", via_par=via_par)
    except AuthorizationError as error:
        raise RedirectedError(error, redirect_uri, mode, params.get("state")) from None
    return areq, client


def now() -> int:
    return int(time.time())
