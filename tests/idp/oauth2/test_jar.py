"""Request objects: JWT-Secured Authorization Requests (RFC 9101) and OIDC Core 6.

By value (`request`) and by reference (`request_uri`, OIDC Core 6.2, fetched through the guarded
fetcher). Re-creates the Basic plan's request object modules and the Dynamic plan's
oidcc-request-uri-signed-rs256, plus the refusals RFC 9101 requires.
"""

from __future__ import annotations

import base64
import json
import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from tests.conftest import ISSUER
from tests.helpers import exchange, get_code, pkce_pair, query_of, register_client

_KEYS: dict = {}


def key(name: str, kind: str = "RSA"):
    if name not in _KEYS:
        params = {"kid": name, "alg": "RS256" if kind == "RSA" else "ES256"}
        _KEYS[name] = RSAKey.generate_key(2048, parameters=params) if kind == "RSA" else \
            ECKey.generate_key("P-256", parameters=params)
    return _KEYS[name]



def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def request_object(rp, signing_key=None, alg=None, **claims) -> str:
    body = {"iss": rp.client_id, "aud": ISSUER, "client_id": rp.client_id,
            "response_type": "code", "redirect_uri": rp.redirect_uri, "scope": "openid profile",
            "state": "obj-" + secrets.token_urlsafe(6), "nonce": "obj-" + secrets.token_urlsafe(6),
            "exp": int(time.time()) + 300, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    if signing_key is None:
        return f"{b64({'alg': 'none'})}.{b64(body)}."
    alg = alg or signing_key.alg
    return jwt.encode({"alg": alg, "kid": signing_key.kid, "typ": "oauth-authz-req+jwt"}, body,
                      signing_key, algorithms=[alg])


def claims_of(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def signed_client(app, signing_key, **metadata):
    return register_client(app, jwks={"keys": [signing_key.as_dict(private=False)]},
                           request_object_signing_alg=signing_key.alg, **metadata)


def authorize(client, rp, **params):
    query = {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
             "response_type": "code", "scope": "openid", "state": "query-state", **params}
    return client.get("/authorize", query_string={k: v for k, v in query.items()
                                                  if v is not None})


def redirected_error(response, rp) -> dict:
    assert response.status_code == 302, response.text[:300]
    assert response.headers["Location"].startswith(rp.redirect_uri)
    callback = query_of(response.headers["Location"])
    assert "code" not in callback
    return callback


def id_token_claims(client, token: str) -> dict:
    return jwt.decode(token, KeySet.import_key_set(client.get("/jwks").json)).claims


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_signed_request_object_supersedes_the_query(app, client, kind):
    """OIDC Core 6.3.3: the object's state, nonce and PKCE challenge are the ones used."""
    signing_key = key(f"jar-{kind}", kind)
    rp = signed_client(app, signing_key)
    verifier, challenge = pkce_pair()
    obj = request_object(rp, signing_key, code_challenge=challenge,
                         code_challenge_method="S256")
    callback, _ = get_code(client, rp, request=obj, state="query-state", nonce="query-nonce")
    assert callback["state"] == claims_of(obj)["state"]
    tokens = exchange(client, rp, callback["code"], verifier)
    assert tokens.status_code == 200, tokens.json
    assert id_token_claims(client, tokens.json["id_token"])["nonce"] == claims_of(obj)["nonce"]


def test_unsigned_request_object_for_a_client_that_registered_none(app, client):
    """Basic plan: an unsigned request object, supported correctly."""
    rp = register_client(app, request_object_signing_alg="none")
    obj = request_object(rp)
    callback, _ = get_code(client, rp, request=obj)
    assert callback["state"] == claims_of(obj)["state"] and callback["code"]


def test_request_object_claims_parameter_is_honoured(app, client):
    """claims as a JSON object inside the request object (OIDC Core 5.5 with 6.1)."""
    signing_key = key("jar-RSA")
    rp = signed_client(app, signing_key)
    verifier, challenge = pkce_pair()
    obj = request_object(rp, signing_key, code_challenge=challenge, code_challenge_method="S256",
                         claims={"id_token": {"email": {"essential": True}}}, max_age=3600)
    callback, _ = get_code(client, rp, request=obj)
    tokens = exchange(client, rp, callback["code"], verifier).json
    assert id_token_claims(client, tokens["id_token"])["email"] == "minhanh.demo@example.vn"


def _refusal_cases(rp, signing_key):
    wrong = key("jar-wrong")
    now = int(time.time())
    header_only = b64({"alg": "RS256"})
    return {
        "unsigned for a signing client": request_object(rp),
        "wrong key": request_object(rp, wrong),
        "expired": request_object(rp, signing_key, exp=now - 3600),
        "not yet valid": request_object(rp, signing_key, nbf=now + 3600),
        "wrong audience": request_object(rp, signing_key, aud="https://other-op.example"),
        "wrong issuer": request_object(rp, signing_key, iss="someone-else"),
        "other client_id": request_object(rp, signing_key, client_id="someone-else"),
        "malformed": "not-a-jwt",
        "bad header": f"{header_only}.e30.c2ln",
        "unsigned with signature part": request_object(rp) + "c2ln",
    }


def test_invalid_request_objects_are_refused(app, client):
    """RFC 9101 6.3 / OIDC Core 6.3.2: invalid_request_object back to the registered URI."""
    signing_key = key("jar-RSA")
    rp = signed_client(app, signing_key)
    for name, obj in _refusal_cases(rp, signing_key).items():
        callback = redirected_error(authorize(client, rp, request=obj), rp)
        assert callback["error"] == "invalid_request_object", name
        assert callback["state"] == "query-state", name


def test_algorithm_other_than_the_registered_one_is_refused(app, client):
    rsa, ec = key("jar-RSA"), key("jar-EC", "EC")
    rp = register_client(app, jwks={"keys": [rsa.as_dict(private=False),
                                             ec.as_dict(private=False)]},
                         request_object_signing_alg="RS256")
    callback = redirected_error(authorize(client, rp, request=request_object(rp, ec)), rp)
    assert callback["error"] == "invalid_request_object"


def test_request_object_with_unregistered_redirect_uri_is_an_error_page(app, client):
    """The object's redirect_uri is checked like the query's: never redirect to it."""
    signing_key = key("jar-RSA")
    rp = signed_client(app, signing_key)
    obj = request_object(rp, signing_key, redirect_uri="https://evil.example/cb")
    response = authorize(client, rp, request=obj)
    assert response.status_code == 400 and "Location" not in response.headers


def test_request_and_request_uri_together_are_refused(app, client, rp_server):
    signing_key = key("jar-RSA")
    uri = rp_server.url("/req.jwt")
    rp = signed_client(app, signing_key, request_uris=[uri])
    callback = redirected_error(authorize(client, rp, request=request_object(rp, signing_key),
                                          request_uri=uri), rp)
    assert callback["error"] == "invalid_request"


def test_request_uri_by_reference(app, client, rp_server):
    """oidcc-request-uri-signed-rs256 with the local server as the RP's host."""
    signing_key = key("jar-RSA")
    uri = rp_server.url("/req.jwt")
    rp = signed_client(app, signing_key, request_uris=[uri])
    obj = request_object(rp, signing_key)
    rp_server.serve("/req.jwt", obj, content_type="application/oauth-authz-req+jwt")
    callback, _ = get_code(client, rp, request_uri=uri, state=None, nonce=None)
    assert callback["state"] == claims_of(obj)["state"]
    (fetched,) = rp_server.received("/req.jwt", "GET")
    assert "jwt" in fetched.headers["Accept"]


def test_request_uri_must_be_registered(app, client, rp_server):
    """OIDC Registration 2 request_uris / require_request_uri_registration: never fetched."""
    signing_key = key("jar-RSA")
    rp = signed_client(app, signing_key, request_uris=[rp_server.url("/registered.jwt")])
    unregistered = rp_server.serve("/other.jwt", request_object(rp, signing_key))
    callback = redirected_error(authorize(client, rp, request_uri=unregistered), rp)
    assert callback["error"] == "invalid_request_uri"
    assert rp_server.received("/other.jwt") == []


def test_request_uri_that_cannot_be_fetched(app, client, rp_server):
    signing_key = key("jar-RSA")
    uri = rp_server.url("/missing.jwt")
    rp = signed_client(app, signing_key, request_uris=[uri])
    callback = redirected_error(authorize(client, rp, request_uri=uri), rp)
    assert callback["error"] == "invalid_request_uri"


def test_request_uri_on_a_private_host_is_not_fetched_in_production(make_app, rp_server):
    """RFC 9101 10.4.1: the request_uri fetch is an SSRF vector."""
    app = make_app(ALLOW_LOOPBACK_FETCH=False)
    client = app.test_client()
    signing_key = key("jar-RSA")
    uri = rp_server.url("/req.jwt")
    rp = signed_client(app, signing_key, request_uris=[uri])
    rp_server.serve("/req.jwt", request_object(rp, signing_key))
    callback = redirected_error(authorize(client, rp, request_uri=uri), rp)
    assert callback["error"] == "invalid_request_uri"
    assert rp_server.requests == []


def test_client_without_request_object_registration_cannot_send_unsigned(app, client):
    rp = register_client(app)
    callback = redirected_error(authorize(client, rp, request=request_object(rp)), rp)
    assert callback["error"] == "invalid_request_object"
