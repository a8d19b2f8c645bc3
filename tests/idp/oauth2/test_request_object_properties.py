"""Property-based tests of request objects (RFC 9101 JAR, OIDC Core 6; idp/oauth2/jar.py) sent
by value to /authorize (`request`) and pushed to /par (RFC 9126).

The objects are genuinely signed by the client, so the signature check passes and every claim
reaches the code behind it: random claims and types (non-string redirect_uri, nested objects,
huge values, missing iss/aud, another client_id, unregistered redirect URIs). Whatever they
hold: never a 500, never a redirect or a form post to a URI the client did not register, a
redirect to the client only with an `error` and `iss`, and PAR answers 201 or a JSON error.
Fixed forgeries (alg none, wrong key, expired...) are in tests/idp/test_fuzz.py.
"""

from __future__ import annotations

import base64
import html
import re
import time

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from joserfc.jwk import RSAKey

from tests.conftest import ISSUER
from tests.helpers import query_of, register_client
from tests.idp.test_fuzz import AUTHZ_ERRORS, TOKEN_ERRORS, TRACEBACK_MARKERS, _fake_jwt, _sign

PROPERTIES = settings(max_examples=50, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
CALLBACK = "https://portal-a.example.vn/callback"
OTHER_CALLBACK = "https://portal-a.example.vn/other"
REGISTERED = (CALLBACK, OTHER_CALLBACK)
UNREGISTERED = ["https://evil.example.com/cb", "https://portal-a.example.vn/callback/x",
                "https://portal-a.example.vn/callback?x=1", "http://portal-a.example.vn/callback",
                "https://portal-a.example.vn.evil.example/callback", "//evil.example.com",
                "javascript:alert(1)", "https://PORTAL-A.example.vn/callback", "", " ",
                CALLBACK + "#frag", CALLBACK + " "]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) |
                          st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
huge = st.sampled_from(["x" * 5000, "openid " * 1500, "é" * 3000])
STRING_CHOICES = {
    "redirect_uri": [*UNREGISTERED, *REGISTERED],
    "response_type": ["code", "token", "id_token", "code id_token", "none", ""],
    "response_mode": ["query", "fragment", "form_post", "jwt", ""],
    "scope": ["openid", "openid profile", "profile", "openid national_id", ""],
    "prompt": ["none", "login", "consent", "select_account", "create", "none login"],
    "code_challenge_method": ["S256", "plain", "none"],
    "max_age": ["0", "-1", "abc", "99999999999999999999"],
    "claims": ['{"id_token": {"acr": {"essential": true}}}', "{", "[]", "null"],
    "acr_values": ["urn:dinhdanh:loa:1", "urn:dinhdanh:loa:3", "x"],
}
CLAIM_NAMES = ["iss", "aud", "client_id", "exp", "nbf", "iat", "jti", *STRING_CHOICES,
               "state", "nonce", "code_challenge", "ui_locales", "login_hint",
               "id_token_hint", "request", "request_uri", "registration"]


def claim_value(name: str):
    choices = [json_value, huge]
    if name in STRING_CHOICES:
        choices.append(st.sampled_from(STRING_CHOICES[name]))
    if name == "client_id":
        choices.append(st.sampled_from(["someone-else", "", "client"]))
    if name == "aud":
        choices.append(st.sampled_from([ISSUER, [ISSUER, "x"], ISSUER + "/", f"{ISSUER}/token"]))
    if name in ("exp", "nbf", "iat"):
        choices.append(st.integers(0, 2 ** 40) | st.floats(allow_nan=False))
    return st.one_of(*choices)


@st.composite
def claim_sets(draw, client_id: str) -> dict:
    """A valid request object's claims with some removed, some replaced, some added."""
    now = int(time.time())
    claims = {"iss": client_id, "aud": ISSUER, "client_id": client_id, "iat": now,
              "exp": now + 300, "response_type": "code", "scope": "openid",
              "redirect_uri": CALLBACK, "state": "from-object", "nonce": "n-1"}
    for name in draw(st.lists(st.sampled_from(list(claims)), max_size=3, unique=True)):
        del claims[name]
    for name in draw(st.lists(st.sampled_from(CLAIM_NAMES), max_size=4, unique=True)):
        claims[name] = draw(claim_value(name))
    claims.update(draw(st.dictionaries(st.text(max_size=10), json_value, max_size=2)))
    return claims


outer_redirects = st.sampled_from([None, CALLBACK, *UNREGISTERED[:3]])


@pytest.fixture(scope="module")
def client_key():
    return RSAKey.generate_key(2048, parameters={"kid": "rp-1", "alg": "RS256"})


@pytest.fixture
def rp(app, client_key):
    return register_client(app, redirect_uris=list(REGISTERED),
                           jwks={"keys": [client_key.as_dict(private=False)]},
                           request_object_signing_alg="RS256")


@pytest.fixture
def unsigned_rp(app):
    """A client that registered `request_object_signing_alg: none` (OIDC Registration 2)."""
    return register_client(app, redirect_uris=list(REGISTERED), request_object_signing_alg="none")


# -- what the citizen's browser may be sent to ---------------------------------------------------

def check_authorize_response(response) -> None:
    """Never a 500; redirects only to our own pages or, with an error and iss, to a URI the
    client registered; a form post only to a registered URI."""
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text[:300]
    assert not any(marker in text for marker in TRACEBACK_MARKERS), text[:300]
    if response.status_code in (301, 302, 303, 307, 308):
        location = response.headers["Location"]
        if location.startswith("/") and not location.startswith("//"):
            return  # our own login/consent pages
        base = location.split("?")[0].split("#")[0]
        assert base in REGISTERED, f"redirect to an unregistered URI: {location}"
        callback = query_of(location)
        assert callback.get("error") in AUTHZ_ERRORS, location
        assert callback.get("iss") == ISSUER and "code" not in callback
        return
    for action in re.findall(r'<form[^>]*action="([^"]*)"', text):
        target = html.unescape(action)
        assert target.startswith("/") and not target.startswith("//") or target in REGISTERED, \
            f"form posts to an unregistered URI: {target}"


def _authorize(client, rp, token: str, outer_redirect: str | None):
    query = {"client_id": rp.client_id, "request": token, "response_type": "code",
             "scope": "openid", "state": "outer"}
    if outer_redirect is not None:
        query["redirect_uri"] = outer_redirect
    return client.get("/authorize", query_string=query)


# -- by value at /authorize ----------------------------------------------------------------------

@PROPERTIES
@given(data=st.data())
def test_signed_request_objects_with_random_claims_at_authorize(client, rp, client_key, data):
    claims = data.draw(claim_sets(rp.client_id))
    outer = data.draw(outer_redirects)
    note(repr(claims)[:1000])
    check_authorize_response(_authorize(client, rp, _sign(claims, client_key), outer))


@PROPERTIES
@given(redirect=st.sampled_from(UNREGISTERED) | json_value)
def test_an_unregistered_redirect_uri_in_the_object_is_never_used(client, rp, client_key,
                                                                  redirect):
    """RFC 9101 5 / RFC 6749 4.1.2.1: the object's redirect_uri wins over the query's, and
    one the client did not register is never redirected to, even with a registered one
    outside: the citizen sees an error page. (A non-string value is a malformed object,
    reported to the registered URI of the query.)"""
    now = int(time.time())
    claims = {"iss": rp.client_id, "aud": ISSUER, "client_id": rp.client_id, "exp": now + 300,
              "response_type": "code", "scope": "openid", "redirect_uri": redirect}
    response = _authorize(client, rp, _sign(claims, client_key), CALLBACK)
    check_authorize_response(response)
    if isinstance(redirect, str):
        assert response.status_code == 400, response.headers.get("Location")


@PROPERTIES
@given(data=st.data())
def test_unsigned_request_objects_with_random_claims_at_authorize(client, unsigned_rp, data):
    claims = data.draw(claim_sets(unsigned_rp.client_id))
    note(repr(claims)[:1000])
    token = _fake_jwt({"alg": "none"}, claims)
    check_authorize_response(_authorize(client, unsigned_rp, token, None))


def test_the_genuine_object_starts_the_sign_in(client, rp, client_key):
    """Positive control: a valid object leads to the login page, so refusals are real."""
    now = int(time.time())
    claims = {"iss": rp.client_id, "aud": ISSUER, "client_id": rp.client_id, "exp": now + 300,
              "response_type": "code", "scope": "openid", "redirect_uri": OTHER_CALLBACK,
              "state": "s", "nonce": "n"}
    response = _authorize(client, rp, _sign(claims, client_key), CALLBACK)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# -- pushed to /par ------------------------------------------------------------------------------

@PROPERTIES
@given(data=st.data())
def test_signed_request_objects_with_random_claims_at_par(client, rp, client_key, data):
    """RFC 9126 2.3: 201 with a request_uri or a JSON error; a request_uri it hands out then
    behaves at /authorize like any other request."""
    claims = data.draw(claim_sets(rp.client_id))
    note(repr(claims)[:1000])
    pushed = client.post("/par", data={"client_id": rp.client_id,
                                       "request": _sign(claims, client_key)},
                         auth=rp.auth)
    text = pushed.get_data(as_text=True)
    assert pushed.status_code in (201, 400, 401, 413), text[:300]
    assert pushed.mimetype == "application/json"
    if pushed.status_code != 201:
        assert pushed.json["error"] in TOKEN_ERRORS | AUTHZ_ERRORS, pushed.json
        assert "request_uri" not in pushed.json
        return
    response = client.get("/authorize", query_string={"client_id": rp.client_id,
                                                      "request_uri": pushed.json["request_uri"]})
    check_authorize_response(response)


# -- nesting: a JSON segment so deep that the parser recurses out of the stack -------------------

DEEP = base64.urlsafe_b64encode(b"[" * 2000).rstrip(b"=").decode()


def test_a_deeply_nested_object_header_is_refused_at_authorize(client, rp):
    check_authorize_response(_authorize(client, rp, DEEP + ".e30.c2ln", CALLBACK))


def test_a_deeply_nested_object_header_is_a_json_error_at_par(client, rp):
    pushed = client.post("/par", data={"client_id": rp.client_id, "request": DEEP + ".e30.c2ln"},
                         auth=rp.auth)
    assert pushed.status_code == 400 and pushed.json["error"] == "invalid_request_object"


def test_a_deeply_nested_unsigned_object_is_refused(client, unsigned_rp):
    token = _fake_jwt({"alg": "none"}, b"[" * 2000)
    check_authorize_response(_authorize(client, unsigned_rp, token, CALLBACK))
