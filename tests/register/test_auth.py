"""Client authentication with the IdP's JWT client assertion (register.auth)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from .conftest import BASE_URL, EC_KEY, IDP_JWKS, RSA_KEY, assertion, bearer

BODY = {"national_id": "001199000001", "fields": {"sex": "F"}}


def call(client, headers=None):
    return client.post("/v1/citizens/verify", json=BODY, headers=headers or {})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned() -> str:
    claims = jwt.decode(assertion(), RSA_KEY).claims
    return f"{_b64({'alg': 'none', 'kid': RSA_KEY.kid})}.{_b64(claims)}."


def _hs256() -> str:
    # The classic confusion attack: HMAC keyed with the RSA public key, under the RSA kid.
    secret = RSA_KEY.as_pem(private=False)
    now = int(time.time())
    claims = {"iss": "http://127.0.0.1:8000", "sub": "dinhdanh-idp", "aud": BASE_URL,
              "iat": now, "exp": now + 60, "jti": "hs-1", "purpose": "x"}
    signing_input = f"{_b64({'alg': 'HS256', 'kid': RSA_KEY.kid})}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _foreign_key_same_kid() -> str:
    other = RSAKey.generate_key(2048, parameters={"kid": RSA_KEY.kid, "alg": "RS256"})
    return assertion(other)


def _unknown_kid() -> str:
    other = ECKey.generate_key("P-256", parameters={"kid": "not-published", "alg": "ES256"})
    return assertion(other)


def test_rs256_and_es256_assertions_are_accepted(client):
    assert call(client, bearer(assertion(RSA_KEY))).status_code == 200
    assert call(client, bearer(assertion(EC_KEY))).status_code == 200
    aud_list = assertion(aud=[BASE_URL, "https://other.example"])
    assert call(client, bearer(aud_list)).status_code == 200


# case -> (headers, words the error_description must contain: the check that fired)
FAILURES = {
    "no token": (dict, "Bearer client assertion is required"),
    "basic scheme": (lambda: {"Authorization": "Basic ZGluaGRhbmgtaWRwOnNlY3JldA=="},
                     "Bearer client assertion is required"),
    "not a JWT": (lambda: bearer("not-a-jwt"), "not a compact JWS"),
    "alg none": (lambda: bearer(_unsigned()), "alg must be"),
    "HS256": (lambda: bearer(_hs256()), "alg must be"),
    "unknown kid": (lambda: bearer(_unknown_kid()), "no IdP key has this kid"),
    "no kid": (lambda: bearer(assertion(header={"kid": None})), "no kid"),
    "signed by another key": (lambda: bearer(_foreign_key_same_kid()), "signature is invalid"),
    "wrong iss": (lambda: bearer(assertion(iss="http://evil.example")), "iss"),
    "wrong aud": (lambda: bearer(assertion(aud="http://127.0.0.1:8000")), "aud"),
    "no aud": (lambda: bearer(assertion(aud=None)), "aud"),
    "wrong sub": (lambda: bearer(assertion(sub="another-client")), "sub"),
    "expired": (lambda: bearer(assertion(iat=int(time.time()) - 400,
                                         exp=int(time.time()) - 100)), "expired"),
    "no exp": (lambda: bearer(assertion(exp=None)), "exp"),
    "no iat": (lambda: bearer(assertion(iat=None)), "iat"),
    "iat in the future": (lambda: bearer(assertion(iat=int(time.time()) + 600,
                                                   exp=int(time.time()) + 700)), "future"),
    "not yet valid": (lambda: bearer(assertion(nbf=int(time.time()) + 600)), "not yet valid"),
    "lifetime too long": (lambda: bearer(assertion(exp=int(time.time()) + 301)), "lifetime"),
    "no jti": (lambda: bearer(assertion(jti=None)), "jti"),
    "no purpose": (lambda: bearer(assertion(purpose=None)), "purpose"),
    "empty purpose": (lambda: bearer(assertion(purpose="  ")), "purpose"),
    "purpose not a string": (lambda: bearer(assertion(purpose=["kyc"])), "purpose"),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_every_invalid_assertion_is_a_401_json(client, case):
    headers, reason = FAILURES[case]
    resp = call(client, headers())
    assert resp.status_code == 401, resp.get_json()
    assert resp.mimetype == "application/json"
    data = resp.get_json()
    assert data["error"] == "invalid_client" and reason in data["error_description"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "found" not in data


def test_a_replayed_assertion_is_refused(client):
    token = assertion()
    assert call(client, bearer(token)).status_code == 200
    resp = call(client, bearer(token))
    assert resp.status_code == 401 and "already used" in resp.get_json()["error_description"]


def test_replay_is_refused_across_processes(make_app):
    token = assertion()
    first, second = make_app(), make_app()  # two workers, one database
    assert call(first.test_client(), bearer(token)).status_code == 200
    assert call(second.test_client(), bearer(token)).status_code == 401


def test_leeway_tolerates_small_clock_skew(client):
    now = int(time.time())
    assert call(client, bearer(assertion(iat=now + 20, exp=now + 80))).status_code == 200
    assert call(client, bearer(assertion(iat=now - 100, exp=now - 10))).status_code == 200


# --- fetching the IdP's JWKS -----------------------------------------------------------------
def test_keys_are_fetched_cached_and_refetched_for_a_new_kid(make_app, fake_server):
    server = fake_server(statuses=(200,), body=json.dumps(IDP_JWKS).encode())
    app = make_app(REGISTER_IDP_JWKS="", REGISTER_IDP_JWKS_URL=server.url + "/jwks",
                   REGISTER_JWKS_REFETCH_SECONDS=0)
    client = app.test_client()
    assert call(client, bearer(assertion())).status_code == 200
    assert call(client, bearer(assertion(EC_KEY))).status_code == 200
    assert len(server.received) == 1, "known kids come from the cache"
    assert server.received[0]["path"] == "/jwks"
    assert call(client, bearer(_unknown_kid())).status_code == 401
    assert len(server.received) == 2, "an unknown kid triggers one refetch"


def test_refetch_for_unknown_kids_is_rate_limited(make_app, fake_server):
    server = fake_server(statuses=(200,), body=json.dumps(IDP_JWKS).encode())
    app = make_app(REGISTER_IDP_JWKS="", REGISTER_IDP_JWKS_URL=server.url + "/jwks")
    client = app.test_client()
    for _ in range(3):
        assert call(client, bearer(_unknown_kid())).status_code == 401
    assert len(server.received) == 1, "at most one fetch per REGISTER_JWKS_REFETCH_SECONDS"


@pytest.mark.parametrize("status,body", [
    (500, b"{}"),
    (200, b"not json"),
    (200, b"{\"keys\": [" + b"{\"kty\": \"oct\", \"k\": \"AAAA\"}," * 20000 + b"{}]}"),
])
def test_unusable_jwks_means_503_not_acceptance(make_app, fake_server, status, body):
    server = fake_server(statuses=(status,), body=body)
    app = make_app(REGISTER_IDP_JWKS="", REGISTER_IDP_JWKS_URL=server.url + "/jwks")
    resp = call(app.test_client(), bearer(assertion()))
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "temporarily_unavailable"


def test_unreachable_jwks_means_503(make_app):
    app = make_app(REGISTER_IDP_JWKS="", REGISTER_IDP_JWKS_URL="http://127.0.0.1:9/jwks",
                   REGISTER_JWKS_TIMEOUT=1.0)
    assert call(app.test_client(), bearer(assertion())).status_code == 503
