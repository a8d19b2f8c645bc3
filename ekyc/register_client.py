"""Client of the population register (the `register/` stub's HTTP API).

Authentication: every request carries `Authorization: Bearer <JWT client assertion>` (RFC 7523
section 3 claims: iss = our issuer, sub = REGISTER_CLIENT_ID, aud = REGISTER_URL, short exp, a
fresh jti) plus the private claim `purpose`, signed with the IdP's own OIDC signing keys
(`idp.keys.sign`, ES256 by default) whose JWKS the register fetches from us.

Resilience: a `requests.Session` with connect/read timeouts, a response size cap, no redirects
and no proxy settings from the environment; REGISTER_RETRIES extra attempts with exponential
back-off and full jitter; and a circuit breaker whose state is in Redis so every web and
worker process shares it: REGISTER_BREAKER_FAILURES consecutive failed calls open it, calls then
fail fast for REGISTER_BREAKER_COOLDOWN seconds, after which ONE probe is let through
(half-open): success closes it, failure opens it again.

Errors are classified: `RegisterUnavailable` (timeouts, connection errors, 5xx, 429, an open
breaker, and our own authentication being refused, which an operator must fix) means "ask
again later": the case waits, it is never decided on it. `RegisterError` is a definitive answer
that is not a result (400: the request itself is wrong), which an officer looks at.

Why not `idp.fetch`: that fetcher guards against SSRF for URLs that portals or users supply and
refuses private addresses in production. The register URL is operator configuration pointing at
an internal service, usually on a private network, so that guard would only break it; the
timeouts, size cap and no-redirect rules are kept here.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import requests
from flask import current_app

from idp import crypto, keys, store

log = logging.getLogger(__name__)
BREAKER_PREFIX = "ekyc:register-breaker"
ASSERTION_LIFETIME = 60  # seconds; the register accepts at most 300
_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()


class RegisterUnavailable(Exception):
    """The register did not give an answer; try again later (never decide without one)."""


class RegisterError(Exception):
    """The register answered that the request itself is wrong: `code` from its error body."""

    def __init__(self, code: str, status: int):
        super().__init__(f"{code} ({status})")
        self.code = code
        self.status = status


@dataclass(frozen=True)
class VerifyAnswer:
    """The register's answer to a verification: per-field match, status, nothing disclosed."""

    found: bool
    status: str | None
    fields: dict = field(default_factory=dict)
    has_portrait: bool = False
    checked_at: str | None = None


class CircuitBreaker:
    """Consecutive-failure breaker shared through Redis (see the module docstring)."""

    def __init__(self, kv, threshold: int, cooldown: int, clock: Callable[[], float] = time.time,
                 prefix: str = BREAKER_PREFIX):
        self.kv, self.threshold, self.cooldown, self.clock = kv, threshold, cooldown, clock
        self.failures_key = f"{prefix}:failures"
        self.open_key = f"{prefix}:open-until"
        self.probe_key = f"{prefix}:probe"

    def state(self) -> str:
        """closed | open | half-open (for operators and tests)."""
        until = self.kv.get(self.open_key)
        if until is None:
            return "closed"
        return "open" if self.clock() < float(until) else "half-open"

    def before_call(self) -> None:
        """Raise `RegisterUnavailable` when the breaker is open (or another process probes)."""
        until = self.kv.get(self.open_key)
        if until is None:
            return
        if self.clock() < float(until):
            raise RegisterUnavailable("circuit breaker open")
        # Half-open: exactly one caller probes; the others keep failing fast meanwhile.
        if not self.kv.set(self.probe_key, "1", nx=True, ex=max(self.cooldown, 1)):
            raise RegisterUnavailable("circuit breaker half-open, probe in progress")

    def success(self) -> None:
        self.kv.delete(self.failures_key, self.open_key, self.probe_key)

    def failure(self) -> None:
        probing = self.kv.get(self.probe_key) is not None
        failures = self.kv.incr(self.failures_key)
        self.kv.expire(self.failures_key, max(self.cooldown * 10, 60))
        if probing or failures >= self.threshold:
            self.kv.set(self.open_key, repr(self.clock() + self.cooldown),
                        ex=max(self.cooldown * 10, 60))
            self.kv.delete(self.probe_key)
            if not probing:
                log.warning("register circuit breaker opened after %d failures", failures)


def breaker(clock: Callable[[], float] | None = None) -> CircuitBreaker:
    conf = current_app.config
    clock = clock or current_app.extensions.get("ekyc.clock") or time.time
    return CircuitBreaker(store.kv(), conf["REGISTER_BREAKER_FAILURES"],
                          conf["REGISTER_BREAKER_COOLDOWN"], clock)


def _session() -> requests.Session:
    """One pooled session per process (keep-alive to the register)."""
    with _SESSIONS_LOCK:
        session = _SESSIONS.get("session")
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or netrc from the environment
            session.max_redirects = 0
            _SESSIONS["session"] = session
        return session


def close_sessions() -> None:
    """Drop pooled connections (tests that stop a register server call this)."""
    with _SESSIONS_LOCK:
        session = _SESSIONS.pop("session", None)
    if session is not None:
        session.close()


def client_assertion(purpose: str, now: int | None = None) -> str:
    """A signed, single-use JWT that authenticates the IdP to the register for one call."""
    conf = current_app.config
    now = int(now if now is not None else time.time())
    claims = {"iss": conf["ISSUER"], "sub": conf["REGISTER_CLIENT_ID"],
              "aud": conf["REGISTER_URL"], "iat": now, "exp": now + ASSERTION_LIFETIME,
              "jti": crypto.random_token(16), "purpose": purpose}
    return keys.sign(claims, conf["REGISTER_ASSERTION_ALG"], typ="JWT")


class _Retryable(Exception):
    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


def _read_capped(response: requests.Response, limit: int, deadline: float) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(16 * 1024):
        body.extend(chunk)
        if len(body) > limit:
            raise _Retryable("response too large")
        if time.monotonic() > deadline:
            raise _Retryable("response too slow")
    return bytes(body)


def _attempt(method: str, path: str, purpose: str, *, payload=None, params=None,
             accept: str = "application/json") -> tuple[int, str, bytes]:
    conf = current_app.config
    timeout = conf["REGISTER_TIMEOUT"]
    headers = {"Authorization": f"Bearer {client_assertion(purpose)}", "Accept": accept}
    deadline = time.monotonic() + 3 * timeout  # bounds a body trickled byte by byte
    try:
        with _session().request(method, conf["REGISTER_URL"] + path, json=payload, params=params,
                                headers=headers, timeout=(timeout, timeout),
                                allow_redirects=False, stream=True) as response:
            body = _read_capped(response, conf["REGISTER_MAX_BYTES"], deadline)
            return response.status_code, response.headers.get("Content-Type", ""), body
    except requests.RequestException as exc:
        raise _Retryable(type(exc).__name__) from exc


def _error_code(body: bytes) -> str:
    try:
        data = json.loads(body)
        return str(data.get("error") or "error")[:64] if isinstance(data, dict) else "error"
    except ValueError:
        return "error"


def call(method: str, path: str, purpose: str, *, payload=None, params=None,
         accept: str = "application/json", ok: tuple[int, ...] = (200,), label: str = "call",
         sleep: Callable[[float], None] = time.sleep) -> tuple[int, bytes]:
    """One logical register call with retries, behind the breaker; returns (status, body).

    Statuses in `ok` (and 404 when listed) are answers; 400/422 raise `RegisterError`;
    everything else raises `RegisterUnavailable` once the retries are spent.
    """
    conf = current_app.config
    cb = breaker()
    cb.before_call()
    attempts = 1 + max(conf["REGISTER_RETRIES"], 0)
    why = "no attempt"
    for attempt in range(attempts):
        if attempt:
            cap = conf["REGISTER_RETRY_BACKOFF"] * 2 ** (attempt - 1)
            sleep(random.uniform(cap / 2, cap))  # exponential back-off with jitter
        try:
            status, _type, body = _attempt(method, path, purpose, payload=payload,
                                           params=params, accept=accept)
        except _Retryable as exc:
            why = exc.why
            continue
        if status in ok:
            cb.success()
            return status, body
        if status in (400, 422):
            cb.success()  # the register is up; our request is wrong
            raise RegisterError(_error_code(body), status)
        if status in (401, 403):
            # Our credentials are refused: not the citizen's fault and not fixed by retrying
            # now; the case waits while an operator fixes keys or clocks.
            log.error("register refused our client assertion (%s): %s", status,
                      _error_code(body))
            why = f"authentication refused ({status})"
            break
        why = f"status {status}"
    cb.failure()
    log.warning("register %s unavailable: %s", label, why)  # never the path: it may hold an ID
    raise RegisterUnavailable(why)


def verify(national_id: str, fields: dict, purpose: str = "ekyc-onboarding") -> VerifyAnswer:
    """POST /v1/citizens/verify: per-field match of what was read from the card."""
    payload = {"national_id": national_id, "fields": fields, "purpose": purpose}
    _status, body = call("POST", "/v1/citizens/verify", purpose, payload=payload, label="verify")
    try:
        data = json.loads(body)
        return VerifyAnswer(found=bool(data["found"]), status=data.get("status"),
                            fields=dict(data.get("fields") or {}),
                            has_portrait=bool(data.get("has_portrait")),
                            checked_at=data.get("checked_at"))
    except (ValueError, KeyError, TypeError) as exc:
        breaker().failure()
        raise RegisterUnavailable("malformed verify answer") from exc


def portrait(national_id: str, purpose: str = "ekyc-face-match") -> bytes | None:
    """GET the register portrait (JPEG) of a citizen, or None when it holds none."""
    status, body = call("GET", f"/v1/citizens/{quote(national_id, safe='')}/portrait", purpose,
                        params={"purpose": purpose}, accept="image/jpeg", ok=(200, 404),
                        label="portrait")
    return body if status == 200 else None


def jwks() -> dict:
    """The register's public JWKS (for its signed status notifications)."""
    _status, body = call("GET", "/jwks.json", "jwks", label="jwks")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise RegisterUnavailable("malformed JWKS") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise RegisterUnavailable("malformed JWKS")
    return data
