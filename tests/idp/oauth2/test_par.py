"""Pushed Authorization Requests (RFC 9126) at /par and their use at /authorize."""

from __future__ import annotations

import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.conftest import ISSUER
from tests.helpers import (
    RP,
    exchange,
    follow_to_client,
    login,
    pkce_pair,
    query_of,
    register_client,
)

URN = "urn:ietf:params:oauth:request_uri:"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_KEY = {}


def rp_key() -> RSAKey:
    if "k" not in _KEY:
        _KEY["k"] = RSAKey.generate_key(2048, parameters={"kid": "par-1", "alg": "RS256"})
    return _KEY["k"]


def push(client, rp: RP, **params):
    """POST /par with client_secret_basic (RFC 9126 2.1)."""
    data = {"response_type": "code", "redirect_uri": rp.redirect_uri, "scope": "openid profile",
            "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8), **params}
    data = {k: v for k, v in data.items() if v is not None}
    return client.post("/par", data=data, auth=rp.auth), data


def authorize_with(client, rp: RP, request_uri: str, **extra):
    return client.get("/authorize", query_string={"client_id": rp.client_id,
                                                  "request_uri": request_uri, **extra})


def to_callback(client, rp: RP, response) -> dict:
    """Log in (and consent) from an /authorize response to the client's callback query."""
    location = response.headers.get("Location", "")
    if location.startswith("/login"):
        response = login(client, interaction=query_of(location)["interaction"])
    response = follow_to_client(client, response, rp)
    assert response.status_code in (302, 303), response.text[:300]
    assert response.headers["Location"].startswith(rp.redirect_uri)
    return query_of(response.headers["Location"])


def is_error_page(response) -> bool:
    return response.status_code >= 400 and "Location" not in response.headers and \
        response.mimetype == "text/html"


def test_push_then_authorize_with_request_uri(app, client):
    """RFC 9126 2.2 and 4: 201 with request_uri and expires_in; the pushed parameters are used."""
    rp = register_client(app)
    verifier, challenge = pkce_pair()
    response, sent = push(client, rp, code_challenge=challenge, code_challenge_method="S256")
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json["request_uri"].startswith(URN)
    assert response.json["expires_in"] == app.config["PAR_TTL"]
    callback = to_callback(client, rp, authorize_with(client, rp, response.json["request_uri"]))
    assert callback["state"] == sent["state"] and callback["iss"] == ISSUER
    tokens = exchange(client, rp, callback["code"], verifier)
    assert tokens.status_code == 200 and tokens.json["id_token"]


def test_request_uri_is_single_use(app, client):
    rp = register_client(app)
    response, _ = push(client, rp)
    request_uri = response.json["request_uri"]
    to_callback(client, rp, authorize_with(client, rp, request_uri))
    assert is_error_page(authorize_with(client, rp, request_uri))


def test_request_uri_expires(app, client):
    rp = register_client(app)
    response, _ = push(client, rp)
    request_uri = response.json["request_uri"]
    with app.app_context():  # let the stored request reach its expiry instead of waiting
        kv = app.extensions["kv"]
        (key,) = [k for k in kv.keys("par:*")]
        kv.pexpire(key, 1)
    time.sleep(0.05)
    assert is_error_page(authorize_with(client, rp, request_uri))


def test_request_uri_of_another_client_is_refused(app, client):
    rp_a = register_client(app)
    rp_b = register_client(app, redirect_uris=["https://portal-b.example.vn/cb"])
    response, _ = push(client, rp_a)
    assert is_error_page(authorize_with(client, rp_b, response.json["request_uri"]))


def test_parameters_outside_the_pushed_request_are_ignored(app, client):
    """RFC 9126 4: the pushed request is the request; a redirect_uri added in the browser
    cannot steer the code elsewhere."""
    rp = register_client(app)
    response, sent = push(client, rp)
    callback = to_callback(client, rp, authorize_with(
        client, rp, response.json["request_uri"], redirect_uri="https://evil.example/cb",
        state="tampered"))
    assert callback["state"] == sent["state"]


def test_client_that_requires_par_cannot_skip_it(app, client):
    """RFC 9126 6 (require_pushed_authorization_requests)."""
    rp = register_client(app, require_pushed_authorization_requests=True)
    direct = client.get("/authorize", query_string={
        "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "response_type": "code",
        "scope": "openid", "state": "s1"})
    if direct.status_code == 302:
        assert direct.headers["Location"].startswith(rp.redirect_uri)
        assert query_of(direct.headers["Location"])["error"] == "invalid_request"
        assert "code" not in query_of(direct.headers["Location"])
    else:
        assert is_error_page(direct)
    response, sent = push(client, rp)
    callback = to_callback(client, rp, authorize_with(client, rp, response.json["request_uri"]))
    assert callback["state"] == sent["state"] and callback["code"]


def test_private_key_jwt_client_pushes_with_an_assertion(app, client):
    key = rp_key()
    rp = register_client(app, token_endpoint_auth_method="private_key_jwt",
                         jwks={"keys": [key.as_dict(private=False)]})
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS256", "kid": key.kid}, {
        "iss": rp.client_id, "sub": rp.client_id, "aud": f"{ISSUER}/par", "iat": now,
        "exp": now + 60, "jti": secrets.token_urlsafe(8)}, key, algorithms=["RS256"])
    response = client.post("/par", data={
        "response_type": "code", "redirect_uri": rp.redirect_uri, "scope": "openid",
        "client_id": rp.client_id, "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion})
    assert response.status_code == 201, response.json


def test_public_client_pushes_with_pkce(app, client):
    rp = register_client(app, token_endpoint_auth_method="none")
    verifier, challenge = pkce_pair()
    response = client.post("/par", data={
        "client_id": rp.client_id, "response_type": "code", "redirect_uri": rp.redirect_uri,
        "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"})
    assert response.status_code == 201
    callback = to_callback(client, rp, authorize_with(client, rp, response.json["request_uri"]))
    assert exchange(client, rp, callback["code"], verifier).status_code == 200


def test_signed_request_object_can_be_pushed(app, client):
    """RFC 9126 3: a request object sent to /par; its parameters are the ones used."""
    key = rp_key()
    rp = register_client(app, jwks={"keys": [key.as_dict(private=False)]},
                         request_object_signing_alg="RS256")
    state, nonce = "obj-" + secrets.token_urlsafe(6), "obj-" + secrets.token_urlsafe(6)
    verifier, challenge = pkce_pair()
    obj = jwt.encode({"alg": "RS256", "kid": key.kid}, {
        "iss": rp.client_id, "aud": ISSUER, "client_id": rp.client_id,
        "response_type": "code", "redirect_uri": rp.redirect_uri, "scope": "openid profile",
        "state": state, "nonce": nonce, "code_challenge": challenge,
        "code_challenge_method": "S256", "exp": int(time.time()) + 120}, key,
        algorithms=["RS256"])
    response = client.post("/par", data={"client_id": rp.client_id, "request": obj},
                           auth=rp.auth)
    assert response.status_code == 201, response.json
    callback = to_callback(client, rp, authorize_with(client, rp, response.json["request_uri"]))
    assert callback["state"] == state
    tokens = exchange(client, rp, callback["code"], verifier)
    assert tokens.status_code == 200, tokens.json
    jwks = KeySet.import_key_set(client.get("/jwks").json)
    assert jwt.decode(tokens.json["id_token"], jwks).claims["nonce"] == nonce


def test_pushed_request_object_with_bad_signature_is_a_json_error(app, client):
    key = rp_key()
    rp = register_client(app, jwks={"keys": [key.as_dict(private=False)]},
                         request_object_signing_alg="RS256")
    other = RSAKey.generate_key(2048, parameters={"kid": "par-1", "alg": "RS256"})
    obj = jwt.encode({"alg": "RS256", "kid": "par-1"}, {
        "client_id": rp.client_id, "response_type": "code", "redirect_uri": rp.redirect_uri,
        "scope": "openid"}, other, algorithms=["RS256"])
    response = client.post("/par", data={"client_id": rp.client_id, "request": obj},
                           auth=rp.auth)
    assert response.status_code == 400 and response.mimetype == "application/json"
    assert response.json["error"] == "invalid_request_object"


@pytest.mark.parametrize("change,error", [
    ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
    ({"redirect_uri": None}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "profile"}, "invalid_scope"),
    ({"code_challenge_method": "plain", "code_challenge": "x" * 43}, "invalid_request"),
    ({"request_uri": URN + "nested"}, "invalid_request"),
    ({"client_id": "someone-else"}, "invalid_request"),
])
def test_par_errors_are_json(app, client, change, error):
    """RFC 9126 2.3: errors are JSON responses, never redirects or pages."""
    rp = register_client(app)
    response, _ = push(client, rp, **change)
    assert response.status_code == 400, response.text[:300]
    assert response.mimetype == "application/json"
    assert response.json["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


def test_par_client_authentication_errors_are_json(app, client):
    rp = register_client(app)
    base = {"response_type": "code", "redirect_uri": rp.redirect_uri, "scope": "openid"}
    unauthenticated = client.post("/par", data={**base, "client_id": rp.client_id})
    wrong_secret = client.post("/par", data=base, auth=(rp.client_id, "wrong"))
    for response in (unauthenticated, wrong_secret):
        assert response.status_code == 401 and response.mimetype == "application/json"
        assert response.json["error"] == "invalid_client"
    assert client.get("/par").mimetype == "application/json"
