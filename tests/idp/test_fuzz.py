"""Malformed input on every endpoint gets the right OAuth error and status: never a 500, never
a stack trace (RFC 6749 4.1.2.1 and 5.2, RFC 6750 3.1, RFC 7009 2.2.1, RFC 7591 3.2.2,
RFC 9126 2.3; OIDC Core 3.1.2.6; the conformance suite's "error responses contain only
error, error_description (no CR/LF/TAB), error_uri, state, iss").

Two parts:
- a property-based test (hypothesis) per route of `app.url_map`, GET and POST (and the
  route's other methods), with random query strings, form/JSON/garbage bodies, oversized
  parameters, random cookies and garbage Basic/Bearer Authorization headers, as an anonymous
  browser, a signed-in one, or one in the middle of an authorization;
- targeted JWTs (alg none, HS256 with our public key, wrong kid, expired, wrong audience,
  wrong issuer, garbage segments) wherever a JWT is accepted: client_assertion (/token, /par,
  /revoke, /introspect), request objects (/authorize, /par), id_token_hint (/authorize,
  /logout) and client jwks at /register — each with a positive control that the valid JWT
  works, so the refusals are not an accident.

CSRF is switched off in the fuzzed app so that garbage reaches the form handlers themselves;
CSRF refusals are tested in tests/idp/oauth2/test_security_bcp.py.
`FUZZ_EXAMPLES` (environment) changes the number of examples per route (default 100).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import time
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from ekyc import api as ekyc_api
from idp import create_app
from tests.conftest import ISSUER, base_config
from tests.helpers import (
    authorize_params,
    full_login,
    get_code,
    pkce_pair,
    query_of,
    register_client,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
MAX_PARAM = 4096  # settings.MAX_PARAM_LENGTH
MAX_BODY = 1024 * 1024  # settings.MAX_CONTENT_LENGTH
FETCH_SINK = "http://127.0.0.1:9"  # discard port: any outbound fetch is refused at once

# -- error registries --------------------------------------------------------------------

TOKEN_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope"}  # RFC 6749 5.2
AUTHZ_ERRORS = {"invalid_request", "unauthorized_client", "access_denied",
                "unsupported_response_type", "invalid_scope",  # RFC 6749 4.1.2.1
                "interaction_required", "login_required", "account_selection_required",
                "consent_required", "invalid_request_uri", "invalid_request_object",
                "request_not_supported", "request_uri_not_supported",
                "registration_not_supported",  # OIDC Core 3.1.2.6
                "unmet_authentication_requirements"}  # OIDC Unmet Authentication Reqs 1.0
BEARER_ERRORS = {"invalid_request", "invalid_token", "insufficient_scope"}  # RFC 6750 3.1
REGISTRATION_ERRORS = {"invalid_redirect_uri", "invalid_client_metadata",
                       "invalid_software_statement", "unapproved_software_statement",
                       "invalid_request",
                       "rate_limited",  # RFC 6585 4: the per-IP limit (oauth2/registration.py)
                       } | BEARER_ERRORS  # RFC 7591 3.2.2, RFC 7592 2
REGISTRY = {
    "/token": TOKEN_ERRORS,
    "/par": TOKEN_ERRORS | AUTHZ_ERRORS,  # RFC 9126 2.3
    "/revoke": TOKEN_ERRORS | {"unsupported_token_type"},  # RFC 7009 2.2.1
    "/introspect": TOKEN_ERRORS,  # RFC 7662 2.3
    "/userinfo": BEARER_ERRORS,
    "/register": REGISTRATION_ERRORS,
    "/jwks": {"invalid_request"},
    "/.well-known/": {"invalid_request"},
    "/healthz": {"invalid_request"},
    "/readyz": {"invalid_request"},
    "/metrics": {"invalid_request", "invalid_token"},
    "/login/passkey/": {"passkey_failed", "invalid_request"},
    "/account/passkeys/": {"passkey_failed", "invalid_request"},
    "/api/onboarding/v1": set(ekyc_api.ERROR_CODES),
    # RFC 8935 2.4 error codes of the register's status-notification receiver
    "/ekyc/register-events": {"invalid_request", "invalid_key", "invalid_issuer",
                              "invalid_audience", "authentication_failed"},
}
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "Werkzeug Debugger",
                     "sqlalchemy.exc", "jinja2.exceptions", "raise ")


def _registry(path: str) -> set[str] | None:
    for prefix, errors in REGISTRY.items():
        if path.startswith(prefix):
            return errors
    return None


# -- the fuzzed app and what it knows ----------------------------------------------------

class Target:
    """The app under fuzz, one registered portal, and the citizen's account id."""

    def __init__(self, app):
        self.app = app
        self.rp = register_client(
            app, redirect_uris=["https://portal-a.example.vn/callback"],
            post_logout_redirect_uris=["https://portal-a.example.vn/bye"],
            backchannel_logout_uri=f"{FETCH_SINK}/backchannel",
            frontchannel_logout_uri="https://portal-a.example.vn/fc",
            request_uris=[f"{FETCH_SINK}/request.jwt"],
            grant_types=["authorization_code", "refresh_token", "client_credentials"])
        with app.app_context():
            from idp.extensions import db
            from idp.models import Account

            self.account_id = db.session.scalars(db.select(Account.id)).first()
            db.session.remove()
        self.allowed_redirects = ["https://portal-a.example.vn/callback",
                                  "https://portal-a.example.vn/bye"]

    def signed_in(self, client) -> str:
        """Give `client` a live SSO session without the (slow, argon2) login form."""
        from flask import g

        from idp import sessions

        with self.app.test_request_context("/"):
            sess = sessions.create(self.account_id, ["pwd"], "urn:dinhdanh:loa:1")
            sessions.add_client(sess, self.rp.client_id)
            cookie = g.set_session_cookie
        client.set_cookie("idp_session", cookie)
        return sess["handle"]

    def interaction(self, client) -> str | None:
        response = client.get("/authorize", query_string=authorize_params(self.rp))
        location = response.headers.get("Location", "")
        return query_of(location).get("interaction")


@pytest.fixture
def target(make_app):
    app = make_app(WTF_CSRF_ENABLED=False, LOGIN_IP_MAX_FAILURES=8,
                   REGISTRATION_PER_IP=100_000)
    return Target(app)


# -- strategies ----------------------------------------------------------------------------

PARAM_NAMES = [
    "client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
    "code_challenge", "code_challenge_method", "prompt", "max_age", "claims", "request",
    "request_uri", "id_token_hint", "login_hint", "acr_values", "ui_locales", "claims_locales",
    "display", "grant_type", "code", "code_verifier", "refresh_token", "client_secret",
    "client_assertion", "client_assertion_type", "token", "token_type_hint", "access_token",
    "interaction", "national_id", "password", "decision", "choice", "handle",
    "post_logout_redirect_uri", "next", "csrf_token", "name", "id", "rawId", "response", "type",
    "logout_token",
]
METADATA_NAMES = [
    "redirect_uris", "client_name", "client_name#vi", "token_endpoint_auth_method",
    "grant_types", "response_types", "scope", "jwks", "jwks_uri", "sector_identifier_uri",
    "request_uris", "post_logout_redirect_uris", "backchannel_logout_uri",
    "frontchannel_logout_uri", "id_token_signed_response_alg", "userinfo_signed_response_alg",
    "request_object_signing_alg", "default_max_age", "require_auth_time", "application_type",
    "logo_uri", "policy_uri", "tos_uri", "contacts", "default_acr_values", "client_id",
    "token_endpoint_auth_signing_alg", "require_pushed_authorization_requests",
]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _fake_jwt(header: dict, claims, signature: bytes = b"") -> str:
    return ".".join([_b64(json.dumps(header).encode()),
                     _b64(json.dumps(claims).encode() if not isinstance(claims, bytes)
                          else claims), _b64(signature)])


GARBAGE_JWTS = [
    _fake_jwt({"alg": "none"}, {"iss": ISSUER, "sub": "x", "aud": "x", "exp": 9999999999}),
    _fake_jwt({"alg": "RS256", "kid": "nope"}, {"sub": "x"}, b"sig"),
    _fake_jwt({"alg": "HS256"}, {"sub": "x"}, b"sig"),
    _fake_jwt({"alg": "RS256"}, b"not json"), _fake_jwt(["array"], {}),
    _fake_jwt({"alg": "ES256", "crit": ["exp"]}, {}, b"\x00" * 64),
    "a.b.c", "...", "eyJ.eyJ.", "eyJhbGciOiJub25lIn0.e30.", "x" * 50, "a.b", "a.b.c.d.e",
    _b64(b"{") + "." + _b64(b"{") + ".",
]
INTERESTING = [
    "", " ", "0", "-1", "1e9", "99999999999999999999999", "null", "true", "[]", "{}", "\x00",
    "\t\r\n", "%00", "%", "é", "💥", "\ud7ff", "openid", "openid profile offline_access",
    "code", "token", "id_token", "S256", "plain", "none", "login", "consent", "select_account",
    "query", "form_post", "fragment", "authorization_code", "refresh_token",
    "client_credentials", "password", "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "urn:ietf:params:oauth:request_uri:abc", "https://evil.example.com/cb", "//evil.example.com",
    "/\\evil.example.com", "javascript:alert(1)", f"{FETCH_SINK}/x", "../../etc/passwd",
    "<script>alert(1)</script>", "' OR '1'='1", "{\"id_token\": {\"acr\": 1}}",
    "{\"userinfo\": null}", "{\"id_token\": {\"acr\": {\"essential\": true, \"values\": 5}}}",
    "allow", "deny", "other", "current", "vi", "en", "001199000001", "Citizen-Demo-1",
    "urn:dinhdanh:loa:2", *GARBAGE_JWTS,
]

text = st.text(max_size=40)
latin1 = st.text(st.characters(max_codepoint=255, blacklist_characters="\r\n"), max_size=60)


@functools.cache  # strategies are built once per app, not per example
def values(target: Target):
    known = [target.rp.client_id, target.rp.redirect_uri, target.rp.client_secret or ""]
    return st.one_of(
        text, st.sampled_from(INTERESTING), st.sampled_from(known),
        st.integers(min_value=-2, max_value=2 ** 70).map(str),
        st.sampled_from([MAX_PARAM + 1, 20000]).map(lambda n: "A" * n),  # oversized
    )


@functools.cache
def json_values(target: Target):
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), values(target))
    keys = st.one_of(st.sampled_from(METADATA_NAMES + PARAM_NAMES), text)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                        st.dictionaries(keys, inner, max_size=6), max_leaves=15)


@functools.cache
def pairs(target: Target):
    name = st.one_of(st.sampled_from(PARAM_NAMES), text)
    return st.lists(st.tuples(name, values(target)), max_size=8)


@functools.cache
def authorization_headers(target: Target):
    rp = target.rp
    basic = st.one_of(
        st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
        st.tuples(st.sampled_from([rp.client_id, "x", "", ":"]), latin1).map(
            lambda p: "Basic " + base64.b64encode(
                f"{p[0]}:{p[1]}".encode("latin-1")).decode()),
        latin1.map(lambda t: "Basic " + t),
    )
    bearer = st.one_of(latin1.map(lambda t: "Bearer " + t),
                       st.sampled_from(GARBAGE_JWTS).map(lambda t: "Bearer " + t))
    return st.one_of(st.none(), basic, bearer, latin1,
                     st.sampled_from(["Basic", "Bearer", "Basic ===", "Bearer  ", "Digest x",
                                      "Basic " + "A" * 9000]))


CONTENT_TYPES = [None, "application/x-www-form-urlencoded", "application/json",
                 "multipart/form-data", "multipart/form-data; boundary=x", "text/plain",
                 "application/jwt", "application/x-www-form-urlencoded; charset=utf-7",
                 "application/json; charset=latin-1", "garbage/;;;"]


@functools.cache
def bodies(target: Target):
    """(body bytes or None, content type): forms, JSON, raw garbage, oversized."""
    form = pairs(target).map(lambda p: (urlencode(p).encode(),
                                        "application/x-www-form-urlencoded"))
    as_json = json_values(target).map(lambda v: (json.dumps(v).encode(), "application/json"))
    raw = st.tuples(st.binary(max_size=200), st.sampled_from(CONTENT_TYPES))
    mislabelled = st.tuples(st.one_of(form, as_json).map(lambda b: b[0]),
                            st.sampled_from(CONTENT_TYPES))
    oversized = st.sampled_from(CONTENT_TYPES[1:3]).map(
        lambda ct: (b"a=" + b"x" * (MAX_BODY + 1), ct))
    return st.one_of(st.just((None, None)), form, as_json, raw, mislabelled, oversized)


def path_for(rule, target: Target, draw) -> str:
    path = rule.rule
    for arg in rule.arguments:
        if arg == "client_id":
            value = draw(st.one_of(text, st.just(target.rp.client_id)))
        elif arg == "code":
            value = draw(st.one_of(text, st.sampled_from(["vi", "en", "fr"])))
        else:
            value = draw(st.one_of(text, st.sampled_from(["site.css", "passkey.js",
                                                          "../idp/settings.py"])))
        converter = "path:" if arg == "filename" else ""
        path = path.replace(f"<{converter}{arg}>", quote(value, safe="/" if converter else ""))
    return path


# -- the property ------------------------------------------------------------------------

def check_response(allowed_redirects: list[str], method: str, path: str, response) -> None:
    """What every answer must look like, whatever was sent."""
    body = response.get_data(as_text=True)
    assert response.status_code < 500, f"{method} {path} -> {response.status_code}: {body[:300]}"
    for marker in TRACEBACK_MARKERS:
        assert marker not in body, f"{method} {path} leaks internals ({marker!r})"
    status = response.status_code
    registry = _registry(urlsplit(path).path)
    if status in (301, 302, 303, 307, 308):
        assert status != 307 or method == "GET", "RFC 9700 4.12: no 307 after a POST"
        _check_redirect(allowed_redirects, path, response.headers["Location"])
    elif path.startswith("/static/") and status in (200, 304):
        pass  # the file itself
    elif urlsplit(path).path == "/metrics" and status == 200:
        assert response.mimetype == "text/plain"  # Prometheus' text format
    elif registry is not None:
        if status == 204:
            assert body == ""
        else:
            assert response.mimetype in ("application/json", "application/jwt"), \
                f"{method} {path} answered {response.mimetype}"
        if status >= 400:
            error = response.json.get("error")
            assert error in registry, f"{method} {path}: error {error!r} not in its registry"
            description = response.json.get("error_description", "")
            assert isinstance(description, str)
            assert not any(c in description for c in "\r\n\t")
    else:
        assert response.mimetype == "text/html", f"{method} {path} answered {response.mimetype}"
        assert "<html" in body


def _check_redirect(allowed_redirects: list[str], path: str, location: str) -> None:
    parts = urlsplit(location)
    if parts.scheme in ("", "http") and parts.netloc in ("", "localhost",
                                                        urlsplit(ISSUER).netloc):
        assert not parts.path.startswith("//"), location
        return
    assert any(location.startswith(uri) for uri in allowed_redirects), \
        f"{path} redirected off-site to {location}: open redirector"
    params = query_of(location)
    assert params.get("iss", ISSUER) == ISSUER
    if "error" in params:
        assert params["error"] in AUTHZ_ERRORS, params["error"]
        assert not any(c in params.get("error_description", "") for c in "\r\n\t")


def send(target: Target, rule, method: str, data) -> None:
    draw = data.draw
    client = target.app.test_client()
    flow = draw(st.sampled_from(["anonymous", "signed_in", "interaction", "otp_pending",
                                 "passkey_challenge"]), label="browser")
    extra_values = []
    if flow == "signed_in":
        extra_values.append(target.signed_in(client))
    elif flow == "interaction":
        if draw(st.booleans(), label="also signed in"):
            target.signed_in(client)
        extra_values.append(target.interaction(client))
    elif flow in ("otp_pending", "passkey_challenge"):
        with client.session_transaction() as flask_session:
            flask_session["pending"] = {"account_id": target.account_id, "amr": ["pwd"],
                                        "at": int(time.time()), "interaction": None}
            flask_session["webauthn_auth"] = _b64(b"c" * 32)
            flask_session["webauthn_reg"] = _b64(b"c" * 32)
        if flow == "passkey_challenge":
            target.signed_in(client)
    path = path_for(rule, target, draw)
    query = draw(st.one_of(
        pairs(target).map(urlencode),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=60),
        st.sampled_from([f"interaction={v}" for v in extra_values if v] or [""]),
    ), label="query")
    body, content_type = draw(bodies(target), label="body")
    headers = {}
    auth = draw(authorization_headers(target), label="authorization")
    if auth is not None:
        headers["Authorization"] = auth
    if draw(st.booleans(), label="garbage cookie"):
        name = draw(st.sampled_from(["idp_session", "idp_flow", "lang"]), label="cookie")
        headers["Cookie"] = name + "=" + draw(latin1.filter(lambda t: ";" not in t),
                                              label="cookie value")
    if draw(st.booleans(), label="more headers"):
        headers["Accept-Language"] = draw(latin1)
        headers["X-Forwarded-For"] = draw(latin1)
        headers["User-Agent"] = draw(latin1)
    note(f"{method} {path}?{query[:300]} ct={content_type} body={(body or b'')[:300]!r} "
         f"headers={ {k: v[:200] for k, v in headers.items()} } flow={flow}")
    response = client.open(path, method=method, query_string=query, data=body,
                           content_type=content_type, headers=headers)
    try:
        check_response(target.allowed_redirects, method, path, response)
    finally:
        response.close()  # a static file response holds an open file


def _rules():
    """Every route of the app, read from a throw-away instance (no database needed)."""
    app = create_app(base_config())
    rules = sorted(app.url_map.iter_rules(), key=lambda r: r.rule)
    return [(rule, sorted((rule.methods - {"HEAD", "OPTIONS"}) | {"GET", "POST"}))
            for rule in rules]


RULES = _rules()


def test_every_route_is_fuzzed():
    """Guard: the fuzz list is the app's url_map, so a new route is fuzzed automatically."""
    paths = {rule.rule for rule, _ in RULES}
    assert {"/authorize", "/token", "/userinfo", "/revoke", "/introspect", "/par", "/register",
            "/register/<client_id>", "/logout", "/logout/confirm", "/login", "/login/otp",
            "/consent", "/select-account", "/account", "/login/passkey/verify"} <= paths


@pytest.mark.parametrize("rule,methods", RULES, ids=[rule.rule for rule, _ in RULES])
@FUZZ_SETTINGS
@given(data=st.data())
def test_route_never_fails_on_garbage(target, rule, methods, data):
    """Random requests to one route: status < 500, no traceback, JSON errors from the route's
    registry on API endpoints, HTML on pages, redirects only to us or to registered URIs."""
    method = data.draw(st.sampled_from(methods), label="method")
    send(target, rule, method, data)


@FUZZ_SETTINGS
@given(path=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x10ffff,
                                  blacklist_categories=("Cs",)), max_size=40),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_unknown_paths_answer_404_in_the_right_format(target, path, method):
    """Unknown addresses: 404/405 as a page, or as JSON below an API prefix."""
    url = "/" + quote(path.lstrip("/"), safe="/")
    response = target.app.test_client().open(url, method=method)
    check_response(target.allowed_redirects, method, url, response)


# -- targeted JWTs -------------------------------------------------------------------------

class Keys:
    """A client key pair, a stranger's key with the same kid, and what they sign."""

    def __init__(self):
        self.client = RSAKey.generate_key(2048, parameters={"kid": "rp-1", "alg": "RS256"})
        self.stranger = RSAKey.generate_key(2048, parameters={"kid": "rp-1", "alg": "RS256"})
        self.other_kid = RSAKey.generate_key(2048, parameters={"kid": "rp-2", "alg": "RS256"})
        self.ec = ECKey.generate_key("P-256", parameters={"kid": "rp-ec", "alg": "ES256"})

    @property
    def jwks(self) -> dict:
        return {"keys": [self.client.as_dict(private=False)]}


@pytest.fixture(scope="module")
def rp_keys():
    return Keys()


def _hs256_with(secret: bytes, claims: dict) -> str:
    """The 'alg confusion' forgery: HS256 keyed with the victim's public key (built by hand:
    joserfc rightly refuses to use a public key as an HMAC secret)."""
    import hashlib
    import hmac

    signing_input = _b64(b'{"alg":"HS256"}') + "." + _b64(json.dumps(claims).encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(mac)


def _sign(claims: dict, key, alg: str = "RS256", header: dict | None = None) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid, **(header or {})}, claims, key,
                      algorithms=[alg])


def _assertion_claims(client_id: str, **changes) -> dict:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": ISSUER, "iat": now, "exp": now + 60,
              "jti": os.urandom(8).hex()}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _bad_assertions(keys: Keys, client_id: str) -> dict[str, str]:
    public_pem = keys.client.as_pem(private=False)
    now = int(time.time())
    return {
        "alg_none": _fake_jwt({"alg": "none"}, _assertion_claims(client_id)),
        "alg_none_with_kid": _fake_jwt({"alg": "none", "kid": "rp-1"},
                                       _assertion_claims(client_id)),
        "hs256_with_public_key": _hs256_with(public_pem, _assertion_claims(client_id)),
        "wrong_key_same_kid": _sign(_assertion_claims(client_id), keys.stranger),
        "unknown_kid": _sign(_assertion_claims(client_id), keys.other_kid),
        "expired": _sign(_assertion_claims(client_id, iat=now - 600, exp=now - 300),
                         keys.client),
        "wrong_audience": _sign(_assertion_claims(client_id, aud="https://other-op.example"),
                                keys.client),
        "wrong_subject": _sign(_assertion_claims(client_id, sub="someone-else"), keys.client),
        "no_exp": _sign(_assertion_claims(client_id, exp=None), keys.client),
        "string_exp": _sign(_assertion_claims(client_id, exp="tomorrow"), keys.client),
        "lives_too_long": _sign(_assertion_claims(client_id, exp=now + 86400), keys.client),
        "no_jti": _sign(_assertion_claims(client_id, jti=None), keys.client),
        "jti_object": _sign(_assertion_claims(client_id, jti={"a": 1}), keys.client),
        "garbage_segments": "a.b.c",
        "two_segments": "eyJhbGciOiJSUzI1NiJ9.e30",
        "not_base64": "!!!.???.***",
        "header_not_json": _fake_jwt({"alg": "RS256"}, {})[1:],
        "claims_array": _sign({"x": 1}, keys.client).split(".")[0] + "." + _b64(b"[1,2]") +
        ".c2ln",
        "huge": "a" * 20000,
    }


@pytest.fixture
def jwt_rp(app, rp_keys):
    return register_client(app, token_endpoint_auth_method="private_key_jwt",
                           jwks=rp_keys.jwks, request_object_signing_alg="RS256",
                           grant_types=["authorization_code", "refresh_token",
                                        "client_credentials"])


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _assertion_request(client, path: str, rp, assertion: str, **form):
    return client.post(path, data={"client_id": rp.client_id, "client_assertion": assertion,
                                   "client_assertion_type": ASSERTION_TYPE, **form})


ASSERTION_ENDPOINTS = {
    "/token": {"grant_type": "client_credentials", "scope": "openid"},
    "/par": {"response_type": "code", "scope": "openid",
             "redirect_uri": "https://portal-a.example.vn/callback"},
    "/revoke": {"token": "x"},
    "/introspect": {"token": "x"},
}


@pytest.mark.parametrize("path", ASSERTION_ENDPOINTS)
def test_client_assertion_bad_jwts_are_invalid_client(app, client, rp_keys, jwt_rp, path):
    """RFC 7523 3 / RFC 6749 5.2: any defect in a private_key_jwt assertion is invalid_client
    (400, or 401: 5.2 requires 401 only for the Authorization header); a valid one is
    accepted (positive control)."""
    form = ASSERTION_ENDPOINTS[path]
    good = _assertion_request(client, path, jwt_rp,
                              _sign(_assertion_claims(jwt_rp.client_id), rp_keys.client), **form)
    assert good.status_code in (200, 201), good.json
    for name, assertion in _bad_assertions(rp_keys, jwt_rp.client_id).items():
        response = _assertion_request(client, path, jwt_rp, assertion, **form)
        assert response.status_code in (400, 401), (name, response.status_code, response.json)
        assert response.json["error"] == "invalid_client", (name, response.json)
        check_response([], "POST", path, response)


def test_client_assertion_replay_is_refused(app, client, rp_keys, jwt_rp):
    """RFC 7523 3 (jti) / RFC 9700 2.5: one assertion, one use."""
    assertion = _sign(_assertion_claims(jwt_rp.client_id), rp_keys.client)
    form = ASSERTION_ENDPOINTS["/token"]
    assert _assertion_request(client, "/token", jwt_rp, assertion, **form).status_code == 200
    replay = _assertion_request(client, "/token", jwt_rp, assertion, **form)
    assert replay.status_code in (400, 401) and replay.json["error"] == "invalid_client"


def _request_object(rp, key, alg="RS256", **changes) -> str:
    now = int(time.time())
    claims = {"iss": rp.client_id, "aud": ISSUER, "client_id": rp.client_id, "iat": now,
              "exp": now + 300, "response_type": "code", "scope": "openid",
              "redirect_uri": rp.redirect_uri, "state": "from-object", "nonce": "n-1"}
    claims.update(changes)
    return _sign({k: v for k, v in claims.items() if v is not None}, key, alg)


def _bad_request_objects(keys: Keys, rp) -> dict[str, str]:
    now = int(time.time())
    base = json.loads(base64.urlsafe_b64decode(
        _request_object(rp, keys.client).split(".")[1] + "=="))
    return {
        "alg_none": _fake_jwt({"alg": "none"}, base),
        "hs256_with_public_key": _hs256_with(keys.client.as_pem(private=False), base),
        "wrong_key_same_kid": _request_object(rp, keys.stranger),
        "unknown_kid": _request_object(rp, keys.other_kid),
        "es256_not_registered": _request_object(rp, keys.ec, "ES256"),
        "expired": _request_object(rp, keys.client, exp=now - 600),
        "not_yet_valid": _request_object(rp, keys.client, nbf=now + 600),
        "wrong_audience": _request_object(rp, keys.client, aud="https://other-op.example"),
        "wrong_issuer": _request_object(rp, keys.client, iss="someone-else"),
        "other_client_id": _request_object(rp, keys.client, client_id="someone-else"),
        "exp_string": _request_object(rp, keys.client, exp="later"),
        "param_not_string": _request_object(rp, keys.client, max_age=[1]),
        "garbage_segments": "a.b.c",
        "four_segments": "a.b.c.d",
        "header_array": _fake_jwt(["x"], base),
        "huge": "a.b." + "c" * 17000,
    }


def test_request_object_bad_jwts_go_back_as_invalid_request_object(app, client, rp_keys,
                                                                   jwt_rp):
    """RFC 9101 6.3 / OIDC Core 6.3.3: a bad request object is `invalid_request_object` (or
    `invalid_request` for an oversized one) sent to the registered redirect URI with iss."""
    good = client.get("/authorize", query_string={
        "client_id": jwt_rp.client_id, "request": _request_object(jwt_rp, rp_keys.client)})
    assert good.status_code == 302 and good.headers["Location"].startswith("/login")
    for name, token in _bad_request_objects(rp_keys, jwt_rp).items():
        response = client.get("/authorize", query_string={
            "client_id": jwt_rp.client_id, "redirect_uri": jwt_rp.redirect_uri,
            "response_type": "code", "scope": "openid", "state": "outer",
            "request": token})
        if name == "huge":  # over the size limit: a page, nothing is parsed
            assert response.status_code == 400 and response.mimetype == "text/html"
            continue
        assert response.status_code == 302, (name, response.status_code)
        callback = query_of(response.headers["Location"])
        assert response.headers["Location"].startswith(jwt_rp.redirect_uri)
        assert callback["error"] == "invalid_request_object", (name, callback)
        assert callback["iss"] == ISSUER and "code" not in callback


def test_request_object_bad_jwts_at_par_are_json_errors(app, client, rp_keys, jwt_rp):
    """RFC 9126 2.3: PAR answers JSON errors; bad request objects never yield a request_uri."""
    def push(token):
        assertion = _sign(_assertion_claims(jwt_rp.client_id), rp_keys.client)
        return _assertion_request(client, "/par", jwt_rp, assertion, request=token)

    good = push(_request_object(jwt_rp, rp_keys.client))
    assert good.status_code == 201 and good.json["request_uri"]
    for name, token in _bad_request_objects(rp_keys, jwt_rp).items():
        response = push(token)
        assert response.status_code == 400, (name, response.status_code)
        assert response.mimetype == "application/json"
        assert response.json["error"] in ("invalid_request_object", "invalid_request"), name
        assert "request_uri" not in response.json


def _bad_id_token_hints(keys: Keys, rp, good_claims: dict) -> dict[str, str]:
    claims = dict(good_claims)
    return {
        "alg_none": _fake_jwt({"alg": "none"}, claims),
        "alg_none_with_our_kid": _fake_jwt({"alg": "none", "kid": "rs256"}, claims),
        "signed_by_a_client_key": _sign(claims, keys.client),
        "hs256": jwt.encode({"alg": "HS256"}, claims, OctKey.generate_key(256),
                            algorithms=["HS256"]),
        "garbage_segments": "a.b.c",
        "truncated": "eyJhbGciOiJSUzI1NiJ9.e30",
        "huge": "a" * 5000,
    }


def _our_token(app, claims: dict) -> str:
    with app.app_context():
        from idp import keys

        return keys.sign(claims)


def test_id_token_hint_bad_jwts_at_authorize(app, client, rp_keys):
    """OIDC Core 3.1.2.1 / 3.1.2.6 (conformance oidcc-id-token-hint): a hint we did not sign,
    or signed for another client or issuer, is refused with an error to the client; a
    genuine hint (even expired) passes with prompt=none."""
    rp = register_client(app, first_party=True)
    tokens = full_login(client, rp)
    good = client.get("/authorize", query_string=authorize_params(
        rp, prompt="none", id_token_hint=tokens["id_token"]))
    assert "code" in query_of(good.headers["Location"])
    claims = jwt.decode(tokens["id_token"], _jwks(client)).claims
    expired = _our_token(app, {**claims, "exp": int(time.time()) - 3600})
    assert "code" in query_of(client.get("/authorize", query_string=authorize_params(
        rp, prompt="none", id_token_hint=expired)).headers["Location"])
    bad = _bad_id_token_hints(rp_keys, rp, claims)
    bad["wrong_audience"] = _our_token(app, {**claims, "aud": "another-client"})
    bad["wrong_issuer"] = _our_token(app, {**claims, "iss": "https://other-op.example"})
    for name, hint in bad.items():
        response = client.get("/authorize", query_string=authorize_params(
            rp, prompt="none", id_token_hint=hint))
        if name == "huge":  # over MAX_PARAM_LENGTH: a page, nothing is parsed
            assert response.status_code == 400 and response.mimetype == "text/html"
            continue
        assert response.status_code == 302, name
        callback = query_of(response.headers["Location"])
        assert callback.get("error") == "invalid_request", (name, callback)
        assert "code" not in callback


def _jwks(client):
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(client.get("/jwks").json)


def test_id_token_hint_bad_jwts_at_logout(app, client, rp_keys):
    """OIDC RP-Initiated Logout 2 (conformance: modified id_token_hint): a forged hint neither
    signs the citizen out nor redirects; the genuine one does both."""
    rp = register_client(app, first_party=True,
                         post_logout_redirect_uris=["https://portal-a.example.vn/bye"])
    tokens = full_login(client, rp)
    claims = jwt.decode(tokens["id_token"], _jwks(client)).claims
    bad = _bad_id_token_hints(rp_keys, rp, claims)
    bad["wrong_issuer"] = _our_token(app, {**claims, "iss": "https://other-op.example"})
    bad["wrong_audience"] = _our_token(app, {**claims, "aud": "another-client"})
    bad["other_sid"] = _our_token(app, {**claims, "sid": "another-session"})
    for name, hint in bad.items():
        response = client.get("/logout", query_string={
            "id_token_hint": hint, "client_id": rp.client_id,
            "post_logout_redirect_uri": "https://portal-a.example.vn/bye", "state": "s"})
        assert response.status_code == 200, (name, response.status_code)
        assert "Location" not in response.headers and response.mimetype == "text/html"
        assert client.get("/account").status_code == 200, f"{name} signed the citizen out"
    good = client.get("/logout", query_string={
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://portal-a.example.vn/bye", "state": "s"})
    assert good.status_code == 303
    assert good.headers["Location"] == "https://portal-a.example.vn/bye?state=s"
    assert client.get("/account").status_code == 302


BAD_JWKS = {
    "not_an_object": "keys",
    "keys_not_a_list": {"keys": {"kty": "RSA"}},
    "empty_key": {"keys": [{}]},
    "unknown_kty": {"keys": [{"kty": "none", "kid": "x"}]},
    "rsa_missing_n": {"keys": [{"kty": "RSA", "e": "AQAB"}]},
    "rsa_garbage_n": {"keys": [{"kty": "RSA", "e": "AQAB", "n": "!!!"}]},
    "ec_bad_curve": {"keys": [{"kty": "EC", "crv": "P-0", "x": "AA", "y": "AA"}]},
    "ec_point_not_on_curve": {"keys": [{"kty": "EC", "crv": "P-256", "x": _b64(b"\x01" * 32),
                                        "y": _b64(b"\x02" * 32)}]},
    "symmetric_key": {"keys": [{"kty": "oct", "k": _b64(b"secret" * 6)}]},
    "keys_null": {"keys": None},
    "key_is_string": {"keys": ["eyJ..."]},
    "nested_garbage": {"keys": [{"kty": "RSA", "n": {"$ne": 1}, "e": [1]}]},
}


@pytest.mark.parametrize("name", BAD_JWKS)
def test_registration_refuses_bad_jwks(client, rp_keys, name):
    """RFC 7591 2 / 3.2.2: a malformed or private `jwks` is invalid_client_metadata (400)."""
    body = {"redirect_uris": ["https://rp.example.vn/cb"],
            "token_endpoint_auth_method": "private_key_jwt", "jwks": BAD_JWKS[name]}
    response = client.post("/register", json=body)
    assert response.status_code == 400, (name, response.status_code, response.json)
    assert response.json["error"] == "invalid_client_metadata"


def test_registration_refuses_private_keys_and_accepts_public_ones(client, rp_keys):
    """RFC 7591 2: jwks holds public keys only (positive control with the public half)."""
    body = {"redirect_uris": ["https://rp.example.vn/cb"],
            "token_endpoint_auth_method": "private_key_jwt"}
    private = client.post("/register", json={
        **body, "jwks": {"keys": [rp_keys.client.as_dict(private=True)]}})
    assert private.status_code == 400
    assert private.json["error"] == "invalid_client_metadata"
    public = client.post("/register", json={**body, "jwks": rp_keys.jwks})
    assert public.status_code == 201


def test_bearer_garbage_at_userinfo_is_invalid_token(app, client):
    """RFC 6750 3.1: a JWT-looking or garbage bearer is `invalid_token` with a challenge."""
    rp = register_client(app)
    _verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    for token in GARBAGE_JWTS + [callback["code"], "A" * 5000]:
        response = client.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.json["error"] == "invalid_token"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
