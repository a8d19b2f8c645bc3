"""The OpenID Foundation's Dynamic OP plan, module by module, against our provider.

Discovery, dynamic registration (RFC 7591 / RFC 7592 / OIDC Registration 1.0), private_key_jwt
client authentication (RFC 7523, OIDC Core 9), pairwise subjects with sector identifiers (OIDC
Core 8.1), per-client ID token and userinfo signing, redirect URI matching, key rotation on
both sides and request objects by reference (OIDC Core 6.2). Each test names the conformance
module it re-creates (see ../shared/OIDC-CONFORMANCE.md).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from functools import cache
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from idp import keys
from tests.conftest import ISSUER
from tests.helpers import RP, exchange, get_code, login, pkce_pair, query_of

CB_A = "https://portal-a.example.vn/callback"
CB_B = "https://portal-b.example.vn/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"



@cache
def rp_key(name: str, kind: str = "RSA"):
    """A relying party's private signing key (cached: RSA generation is slow)."""
    params = {"kid": name, "use": "sig", "alg": "RS256" if kind == "RSA" else "ES256"}
    if kind == "RSA":
        return RSAKey.generate_key(2048, parameters=params)
    return ECKey.generate_key("P-256", parameters=params)


def public_jwks(*keys_) -> dict:
    return {"keys": [k.as_dict(private=False) for k in keys_]}


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def client_assertion(key, client_id: str, aud=f"{ISSUER}/token", *, lifetime: int = 60,
                     jti: str | None = None, alg: str | None = None, **extra) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now,
              "exp": now + lifetime, "jti": jti or secrets.token_urlsafe(12), **extra}
    alg = alg or key.alg
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def register(client, status: int = 201, **metadata) -> dict:
    """POST /register like a relying party; returns the JSON body."""
    body = {"client_name": "Cổng dịch vụ công A", "redirect_uris": [CB_A],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile email offline_access", **metadata}
    response = client.post("/register", json=body)
    assert response.status_code == status, response.json
    return response.json


def as_rp(reg: dict) -> RP:
    return RP(reg["client_id"], reg.get("client_secret"), reg["redirect_uris"][0], reg)


def verify(client, token: str) -> jwt.Token:
    """Verify a JWT from the OP like an RP: against the published JWKS, any of our algs."""
    jwks = KeySet.import_key_set(client.get("/jwks").json)
    return jwt.decode(token, jwks, algorithms=["RS256", "ES256"])


def header(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def pkjwt_login(client, rp: RP, key, aud=f"{ISSUER}/token", **params) -> dict:
    """Code flow whose token request authenticates with private_key_jwt."""
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256",
                           **params)
    response = exchange(client, rp, callback["code"], verifier,
                        client_assertion_type=ASSERTION_TYPE,
                        client_assertion=client_assertion(key, rp.client_id, aud))
    assert response.status_code == 200, response.json
    return response.json


def token_auth_result(client, client_id: str, assertion: str):
    """Token request with a made-up code: invalid_client if authentication fails,
    invalid_grant once the client is authenticated (RFC 6749 5.2)."""
    return client.post("/token", data={
        "grant_type": "authorization_code", "code": "not-a-real-code",
        "redirect_uri": CB_A, "client_id": client_id,
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})


def is_error_page(response) -> bool:
    return response.status_code >= 400 and "Location" not in response.headers and \
        response.mimetype == "text/html"


# -- discovery ------------------------------------------------------------------------------

def test_discovery_advertises_what_the_dynamic_plan_uses(client):
    """oidcc-discovery-endpoint-verification, the parts the Dynamic plan relies on."""
    meta = client.get("/.well-known/openid-configuration").json
    assert meta["issuer"] == ISSUER
    assert meta["registration_endpoint"] == f"{ISSUER}/register"
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert {"RS256", "ES256"} <= set(meta["id_token_signing_alg_values_supported"])
    assert "RS256" in meta["userinfo_signing_alg_values_supported"]
    assert "pairwise" in meta["subject_types_supported"]
    assert meta["request_uri_parameter_supported"] is True


# -- registration (RFC 7591, RFC 7592) --------------------------------------------------------

def test_registration_returns_credentials_and_management_uri(client):
    """Every Dynamic test's registration: 201, client_id, secret with expiry, and
    registration_client_uri with registration_access_token (both or neither)."""
    response = client.post("/register", json={"redirect_uris": [CB_A], "client_name": "A"})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["client_id"] and body["client_secret"]
    assert body["client_secret_expires_at"] == 0  # 0: does not expire (RFC 7591 3.2.1)
    assert body["registration_access_token"]
    assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
    assert body["redirect_uris"] == [CB_A] and body["subject_type"] == "pairwise"
    assert isinstance(body["client_id_issued_at"], int)


def test_private_key_jwt_client_gets_no_secret(client):
    body = register(client, token_endpoint_auth_method="private_key_jwt",
                    jwks=public_jwks(rp_key("rp-1")))
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["registration_access_token"] and body["registration_client_uri"]


def test_registration_read_update_delete(client):
    """RFC 7592 2.1-2.3: GET, PUT, DELETE (204) at registration_client_uri, then 401."""
    body = register(client)
    path = urlsplit(body["registration_client_uri"]).path
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}

    read = client.get(path, headers=auth)
    assert read.status_code == 200 and read.json["client_id"] == body["client_id"]
    assert read.json["registration_client_uri"] == body["registration_client_uri"]
    assert read.json["registration_access_token"]  # both or neither
    assert "client_secret" not in read.json or read.json.get("client_secret_expires_at") == 0

    update = client.put(path, headers=auth, json={
        "client_id": body["client_id"], "client_name": "Cổng mới",
        "redirect_uris": [CB_A, "https://portal-a.example.vn/cb2"]})
    assert update.status_code == 200, update.json
    assert update.json["client_name"] == "Cổng mới" and len(update.json["redirect_uris"]) == 2
    assert client.get(path, headers=auth).json["client_name"] == "Cổng mới"

    assert client.put(path, headers=auth, json={"client_id": "someone-else",
                                                 "redirect_uris": [CB_A]}).status_code == 400
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(path).status_code == 401

    deleted = client.delete(path, headers=auth)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get(path, headers=auth).status_code == 401
    assert client.delete(path, headers=auth).status_code == 401


def test_registration_token_manages_only_its_own_client(client):
    a, b = register(client), register(client)
    response = client.get(urlsplit(b["registration_client_uri"]).path,
                          headers={"Authorization": f"Bearer {a['registration_access_token']}"})
    assert response.status_code == 401


def test_update_that_switches_to_a_secret_method_issues_a_secret(client):
    """RFC 7592 2.2: a client that moves to client_secret_basic must be able to use it."""
    body = register(client, token_endpoint_auth_method="private_key_jwt",
                    jwks=public_jwks(rp_key("rp-1")))
    path = urlsplit(body["registration_client_uri"]).path
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}
    update = client.put(path, headers=auth, json={
        "client_id": body["client_id"], "redirect_uris": [CB_A],
        "token_endpoint_auth_method": "client_secret_basic"})
    assert update.status_code == 200
    secret = update.json["client_secret"]
    assert update.json["client_secret_expires_at"] == 0
    response = client.post("/token", data={"grant_type": "authorization_code", "code": "x",
                                           "redirect_uri": CB_A},
                           auth=(body["client_id"], secret))
    assert response.json["error"] == "invalid_grant"  # authenticated, then the code fails


def test_redirect_uri_with_fragment_is_refused(client):
    """oidcc-redirect-uri-regfrag."""
    body = register(client, 400, redirect_uris=[CB_A + "#fragment"])
    assert body["error"] in ("invalid_redirect_uri", "invalid_client_metadata")


@pytest.mark.parametrize("data,content_type", [
    (b"{not json", "application/json"),
    (b'["https://portal-a.example.vn/callback"]', "application/json"),
    (b'"a string"', "application/json"),
    (b'{"redirect_uris": ["https://portal-a.example.vn/callback"]}', "text/plain"),
    (b"redirect_uris=https://portal-a.example.vn/callback",
     "application/x-www-form-urlencoded"),
])
def test_malformed_registration_bodies_are_invalid_client_metadata(client, data, content_type):
    response = client.post("/register", data=data, content_type=content_type)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_client_metadata"


def test_registration_needs_the_initial_access_token_when_closed(make_app):
    """Production: registration is closed; RFC 7591 3 initial access token (401 without)."""
    app = make_app(REGISTRATION_OPEN=False, REGISTRATION_INITIAL_ACCESS_TOKEN="iat-Secret-1")
    client = app.test_client()
    body = {"redirect_uris": [CB_A]}
    assert client.post("/register", json=body).status_code == 401
    wrong = client.post("/register", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json["error"] == "invalid_token"
    right = client.post("/register", json=body,
                        headers={"Authorization": "Bearer iat-Secret-1"})
    assert right.status_code == 201


def test_production_settings_close_registration():
    from idp import settings

    conf = settings.load_settings({
        "IDP_ENV": "production", "SECRET_KEY": "s" * 40, "PAIRWISE_SECRET": "p" * 40,
        "DATA_ENCRYPTION_KEY": "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, environ={})
    assert conf["REGISTRATION_OPEN"] is False and conf["ALLOW_LOOPBACK_FETCH"] is False


def test_self_registered_client_cannot_ask_for_the_national_id(client):
    """DESIGN: the ID number goes only to portals an operator allows to ask."""
    body = register(client, scope="openid profile national_id")
    assert "national_id" not in body["scope"].split()


@pytest.mark.parametrize("field", ["logo_uri", "policy_uri", "tos_uri"])
def test_registered_uris_are_shown_on_login_and_consent(client, field):
    """oidcc-registration-logo-uri, -policy-uri, -tos-uri."""
    uri = f"https://portal-a.example.vn/{field}.png"
    rp = as_rp(register(client, **{field: uri}))
    response = client.get("/authorize", query_string={
        "client_id": rp.client_id, "redirect_uri": CB_A, "response_type": "code",
        "scope": "openid profile", "state": "s1", "nonce": "n1"})
    location = response.headers["Location"]
    assert urlsplit(location).path == "/login"
    assert uri in client.get(location).text
    consent = login(client, interaction=query_of(location)["interaction"])
    while urlsplit(consent.headers["Location"]).path != "/consent":
        consent = client.get(consent.headers["Location"])
    assert uri in client.get(consent.headers["Location"]).text


# -- keys and private_key_jwt -----------------------------------------------------------------

def test_jwks_uri_registration_and_private_key_jwt(client, rp_server):
    """oidcc-registration-jwks-uri: the OP fetches the RP's keys from its jwks_uri."""
    key = rp_key("rp-1")
    jwks_uri = rp_server.serve("/jwks", public_jwks(key))
    rp = as_rp(register(client, token_endpoint_auth_method="private_key_jwt",
                        jwks_uri=jwks_uri))
    tokens = pkjwt_login(client, rp, key)
    assert verify(client, tokens["id_token"]).claims["aud"] == rp.client_id
    assert rp_server.received("/jwks", "GET")


@pytest.mark.parametrize("aud", [ISSUER, f"{ISSUER}/token", [ISSUER, "https://other.example"]])
def test_client_assertion_audience_issuer_or_token_endpoint(client, aud):
    """ensure-client-assertion-with-iss-aud-succeeds (and the token endpoint audience)."""
    key = rp_key("rp-1")
    rp = as_rp(register(client, token_endpoint_auth_method="private_key_jwt",
                        jwks=public_jwks(key)))
    tokens = pkjwt_login(client, rp, key, aud=aud)
    assert tokens["token_type"] == "Bearer" and tokens["id_token"]


def test_client_assertion_failures_are_invalid_client(client):
    """RFC 7523 3: audience, lifetime, one-time jti, signature and algorithm all checked."""
    key, other = rp_key("rp-1"), rp_key("rp-other")
    rp = as_rp(register(client, token_endpoint_auth_method="private_key_jwt",
                        jwks=public_jwks(key)))
    cid = rp.client_id

    control = token_auth_result(client, cid, client_assertion(key, cid))
    assert control.json["error"] == "invalid_grant"  # authentication itself passes

    now = int(time.time())
    unsigned_claims = {"iss": cid, "sub": cid, "aud": ISSUER, "exp": now + 60, "jti": "n1"}
    unsigned = f"{b64({'alg': 'none'})}.{b64(unsigned_claims)}."
    refused = {
        "expired": client_assertion(key, cid, lifetime=-600),
        "long-lived": client_assertion(key, cid, lifetime=24 * 3600),
        "wrong key": client_assertion(other, cid),
        "alg none": unsigned,
        "wrong audience": client_assertion(key, cid, aud="https://elsewhere.example/token"),
        "iss is not sub": client_assertion(key, cid, iss="someone-else"),
        "another client": client_assertion(key, "unknown-client"),
    }
    for name, assertion in refused.items():
        response = token_auth_result(client, cid, assertion)
        assert response.status_code in (400, 401), name
        assert response.json["error"] == "invalid_client", name


def test_replayed_client_assertion_is_refused(client):
    """RFC 7523 3 item 7: a jti is accepted once."""
    key = rp_key("rp-1")
    rp = as_rp(register(client, token_endpoint_auth_method="private_key_jwt",
                        jwks=public_jwks(key)))
    assertion = client_assertion(key, rp.client_id, jti="only-once")
    assert token_auth_result(client, rp.client_id, assertion).json["error"] == "invalid_grant"
    replay = token_auth_result(client, rp.client_id, assertion)
    assert replay.status_code in (400, 401) and replay.json["error"] == "invalid_client"


def test_registered_assertion_algorithm_is_enforced(client):
    """OIDC Registration 2 token_endpoint_auth_signing_alg: other algorithms MUST be refused."""
    rsa, ec = rp_key("rp-1"), rp_key("rp-ec", "EC")
    rp = as_rp(register(client, token_endpoint_auth_method="private_key_jwt",
                        token_endpoint_auth_signing_alg="ES256", jwks=public_jwks(rsa, ec)))
    refused = token_auth_result(client, rp.client_id, client_assertion(rsa, rp.client_id))
    assert refused.json["error"] == "invalid_client"
    accepted = token_auth_result(client, rp.client_id, client_assertion(ec, rp.client_id))
    assert accepted.json["error"] == "invalid_grant"


def test_deleted_client_loses_its_tokens(client):
    """RFC 7592 2.3: after DELETE the client's grants no longer work."""
    body = register(client)
    rp = as_rp(body)
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256",
                           scope="openid offline_access", prompt="consent")
    tokens = exchange(client, rp, callback["code"], verifier).json
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}
    deleted = client.delete(urlsplit(body["registration_client_uri"]).path, headers=auth)
    assert deleted.status_code == 204
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 401
    refresh = client.post("/token", data={"grant_type": "refresh_token",
                                          "refresh_token": tokens["refresh_token"]},
                          auth=rp.auth)
    assert refresh.status_code in (400, 401) and refresh.json["error"] == "invalid_client"


def test_secret_client_cannot_switch_to_an_assertion(client):
    """A client registered for client_secret_basic is not authenticated by a JWT."""
    key = rp_key("rp-1")
    rp = as_rp(register(client, jwks=public_jwks(key)))
    response = token_auth_result(client, rp.client_id, client_assertion(key, rp.client_id))
    assert response.json["error"] == "invalid_client"


def test_refresh_with_rotated_client_keys(client, rp_server):
    """oidcc-refresh-token-rp-key-rotation: the RP publishes a new key at its jwks_uri and
    signs the refresh request with it; the old key stops working once withdrawn."""
    old, new = rp_key("rp-1"), rp_key("rp-2")
    jwks_uri = rp_server.serve("/jwks", public_jwks(old))
    rp = as_rp(register(client, token_endpoint_auth_method="private_key_jwt",
                        jwks_uri=jwks_uri))
    tokens = pkjwt_login(client, rp, old, scope="openid offline_access", prompt="consent")
    assert tokens["refresh_token"]
    rp_server.serve("/jwks", public_jwks(new))  # the RP rotated its keys

    stale = client.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(old, rp.client_id)})
    assert stale.json["error"] == "invalid_client"
    refreshed = client.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(new, rp.client_id)})
    assert refreshed.status_code == 200, refreshed.json
    assert refreshed.headers["Cache-Control"] == "no-store"
    first, second = verify(client, tokens["id_token"]), verify(client, refreshed.json["id_token"])
    assert second.claims["sub"] == first.claims["sub"]
    assert refreshed.json["access_token"] != tokens["access_token"]


# -- ID token and userinfo signing --------------------------------------------------------------

@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_id_token_signed_with_the_registered_algorithm(client, alg):
    """oidcc-idtoken-rs256 (and ES256 for clients that register it)."""
    rp = as_rp(register(client, id_token_signed_response_alg=alg))
    verifier, challenge = pkce_pair()
    callback, params = get_code(client, rp, code_challenge=challenge,
                                code_challenge_method="S256")
    tokens = exchange(client, rp, callback["code"], verifier).json
    token = tokens["id_token"]
    assert header(token)["alg"] == alg
    assert header(token)["kid"] in {k["kid"] for k in client.get("/jwks").json["keys"]
                                     if k["alg"] == alg}
    claims = verify(client, token).claims
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id
    assert claims["nonce"] == params["nonce"] and claims["sid"]
    assert abs(claims["iat"] - time.time()) < 300 and claims["exp"] > claims["iat"]


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_userinfo_signed_response(client, alg):
    """oidcc-userinfo-rs256: application/jwt, signed, iss and aud set, no nonce."""
    rp = as_rp(register(client, userinfo_signed_response_alg=alg))
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    tokens = exchange(client, rp, callback["code"], verifier).json
    response = client.get("/userinfo",
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200 and response.mimetype == "application/jwt"
    assert header(response.text)["alg"] == alg
    claims = verify(client, response.text).claims
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id
    assert claims["sub"] == verify(client, tokens["id_token"]).claims["sub"]
    assert "nonce" not in claims and claims["name"]


# -- redirect URIs ------------------------------------------------------------------------------

def test_redirect_uri_required_when_several_are_registered(client):
    """oidcc-ensure-redirect-uri-in-authorization-request: an error page, no redirect."""
    rp = as_rp(register(client, redirect_uris=[CB_A, "https://portal-a.example.vn/other"]))
    response = client.get("/authorize", query_string={
        "client_id": rp.client_id, "response_type": "code", "scope": "openid",
        "state": "s", "nonce": "n"})
    assert is_error_page(response)


def test_registered_query_is_kept_and_code_appended(client):
    """oidcc-redirect-uri-query-OK."""
    registered = CB_A + "?portal=dvc&lang=vi"
    rp = as_rp(register(client, redirect_uris=[registered]))
    verifier, challenge = pkce_pair()
    callback, params = get_code(client, rp, code_challenge=challenge,
                                code_challenge_method="S256")
    assert callback["portal"] == "dvc" and callback["lang"] == "vi"
    assert callback["state"] == params["state"] and callback["iss"] == ISSUER
    response = exchange(client, rp, callback["code"], verifier)
    assert response.status_code == 200


@pytest.mark.parametrize("sent", [
    CB_A + "?portal=other",  # oidcc-redirect-uri-query-mismatch
    CB_A + "?portal=dvc&extra=1",  # oidcc-redirect-uri-query-added
    CB_A,  # registered query dropped
])
def test_redirect_uri_query_must_match_exactly(client, sent):
    rp = as_rp(register(client, redirect_uris=[CB_A + "?portal=dvc"]))
    response = client.get("/authorize", query_string={
        "client_id": rp.client_id, "redirect_uri": sent, "response_type": "code",
        "scope": "openid", "state": "s", "nonce": "n"})
    assert is_error_page(response)


def test_query_added_to_plain_registered_uri_is_refused(client):
    """oidcc-redirect-uri-query-added with a registered URI that has no query."""
    rp = as_rp(register(client))
    response = client.get("/authorize", query_string={
        "client_id": rp.client_id, "redirect_uri": CB_A + "?foo=bar", "response_type": "code",
        "scope": "openid", "state": "s", "nonce": "n"})
    assert is_error_page(response)


# -- pairwise subjects and sector identifiers ---------------------------------------------------

def _sub(client, rp: RP) -> str:
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    return verify(client, exchange(client, rp, callback["code"], verifier).json["id_token"]) \
        .claims["sub"]


def test_sector_identifier_uri_gives_one_subject_per_sector(client, rp_server):
    """oidcc-registration-sector-uri: clients of one sector share the pairwise sub; another
    sector (or a client without one) sees a different sub."""
    sector = rp_server.serve("/sector.json", [CB_A, CB_B])
    rp_a = as_rp(register(client, redirect_uris=[CB_A], sector_identifier_uri=sector))
    rp_b = as_rp(register(client, redirect_uris=[CB_B], sector_identifier_uri=sector))
    assert rp_server.received("/sector.json", "GET")
    rp_server.serve("/other-sector.json", [CB_A])  # same server, another host name
    rp_c = as_rp(register(client, redirect_uris=[CB_A],
                          sector_identifier_uri=rp_server.url("/other-sector.json",
                                                              host="localhost")))
    rp_d = as_rp(register(client, redirect_uris=[CB_A]))  # sector = portal-a.example.vn

    sub_a, sub_b, sub_c, sub_d = (_sub(client, rp) for rp in (rp_a, rp_b, rp_c, rp_d))
    assert sub_a == sub_b
    assert len({sub_a, sub_c, sub_d}) == 3


def test_sector_document_not_listing_the_redirect_uri_is_refused(client, rp_server):
    """oidcc-registration-sector-bad."""
    sector = rp_server.serve("/sector.json", [CB_B])
    body = register(client, 400, redirect_uris=[CB_A], sector_identifier_uri=sector)
    assert body["error"] == "invalid_client_metadata"


def test_two_hosts_without_sector_identifier_are_refused(client):
    body = register(client, 400, redirect_uris=[CB_A, CB_B])
    assert body["error"] == "invalid_client_metadata"


# -- request objects by reference ----------------------------------------------------------------

def test_request_uri_signed_rs256(client, rp_server):
    """oidcc-request-uri-signed-rs256: the OP fetches the signed object from a registered
    request_uri and uses its state, nonce and redirect_uri."""
    key = rp_key("rp-1")
    request_uri = rp_server.url("/request.jwt")
    rp = as_rp(register(client, jwks=public_jwks(key), request_uris=[request_uri],
                        request_object_signing_alg="RS256"))
    state, nonce = "st-" + secrets.token_urlsafe(8), "nc-" + secrets.token_urlsafe(8)
    verifier, challenge = pkce_pair()
    obj = jwt.encode({"alg": "RS256", "kid": key.kid}, {
        "iss": rp.client_id, "aud": ISSUER, "client_id": rp.client_id,
        "response_type": "code", "redirect_uri": CB_A, "scope": "openid profile",
        "state": state, "nonce": nonce, "code_challenge": challenge,
        "code_challenge_method": "S256", "exp": int(time.time()) + 300}, key,
        algorithms=["RS256"])
    rp_server.serve("/request.jwt", obj, content_type="application/oauth-authz-req+jwt")
    callback, _ = get_code(client, rp, redirect_uri=None, state=None, nonce=None,
                           scope="openid", request_uri=request_uri)
    assert callback["state"] == state
    assert rp_server.received("/request.jwt", "GET")
    tokens = exchange(client, rp, callback["code"], verifier).json
    assert verify(client, tokens["id_token"]).claims["nonce"] == nonce


def test_server_key_rotation_keeps_old_id_tokens_verifiable(app, client):
    """oidcc-server-rotate-keys through the CLI (`flask keys rotate`)."""
    rp = as_rp(register(client))
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    old = exchange(client, rp, callback["code"], verifier).json["id_token"]
    kids_before = {k["kid"] for k in client.get("/jwks").json["keys"]}
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0
    kids_after = {k["kid"] for k in client.get("/jwks").json["keys"]}
    assert kids_before < kids_after
    assert verify(client, old).claims["aud"] == rp.client_id
    verifier, challenge = pkce_pair()
    callback, _ = get_code(client, rp, code_challenge=challenge, code_challenge_method="S256")
    new = exchange(client, rp, callback["code"], verifier).json["id_token"]
    assert header(new)["kid"] in kids_after - kids_before
    with app.app_context():
        assert keys.verify(new).claims["sub"] == keys.verify(old).claims["sub"]
