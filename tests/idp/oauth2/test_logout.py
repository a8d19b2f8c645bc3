"""Logout: the OpenID Foundation's RP-initiated, back-channel and front-channel logout plans.

OIDC RP-Initiated Logout 1.0 (end_session with id_token_hint, post_logout_redirect_uri, state),
OIDC Back-Channel Logout 1.0 (logout tokens POSTed to each portal of the session) and OIDC
Front-Channel Logout 1.0 (iframes carrying iss and sid). See ../shared/OIDC-CONFORMANCE.md.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.conftest import ISSUER
from tests.helpers import csrf_token, full_login, query_of, register_client

CB_A = "https://portal-a.example.vn/callback"
CB_B = "https://portal-b.example.vn/callback"
AFTER_A = "https://portal-a.example.vn/logged-out"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Letters, digits and punctuation, as the conformance suite sends (byte for byte back).
STATE = "aB9-._~!$'()*+,;=:@/?%&#[]{}|^`\"<> end"



def portal(app, redirect_uri=CB_A, **metadata):
    """A portal with a registered post-logout URI, first party so no consent step."""
    metadata.setdefault("post_logout_redirect_uris", [AFTER_A])
    return register_client(app, first_party=True, redirect_uris=[redirect_uri], **metadata)


def claims(client, token: str) -> dict:
    return jwt.decode(token, KeySet.import_key_set(client.get("/jwks").json),
                      algorithms=["RS256", "ES256"]).claims


def header(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def prompt_none(client, rp):
    """oidcc-prompt-none after logout: the callback query (or the whole response)."""
    response = client.get("/authorize", query_string={
        "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "response_type": "code",
        "scope": "openid", "state": "after", "prompt": "none"})
    assert response.status_code == 302
    return query_of(response.headers["Location"])


def assert_page_not_redirect(response, target: str = AFTER_A):
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers
    assert not re.search(r'http-equiv="refresh"', response.text)
    assert f'data-next="{target}' not in response.text


# -- RP-initiated logout ----------------------------------------------------------------------

def test_logout_redirects_with_state_byte_for_byte(app, client):
    """oidcc-rp-initiated-logout: registered post_logout_redirect_uri, state returned exactly;
    afterwards prompt=none fails with login_required."""
    rp = portal(app)
    id_token = full_login(client, rp)["id_token"]
    response = client.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": AFTER_A, "state": STATE})
    assert response.status_code in (302, 303)
    location = response.headers["Location"]
    assert location.split("?")[0] == AFTER_A
    assert parse_qs(urlsplit(location).query) == {"state": [STATE]}
    assert prompt_none(client, rp)["error"] == "login_required"


def test_logout_by_post_form(app, client):
    """RP-Initiated Logout 2: the end_session endpoint accepts POST too."""
    rp = portal(app)
    id_token = full_login(client, rp)["id_token"]
    response = client.post("/logout", data={
        "id_token_hint": id_token, "post_logout_redirect_uri": AFTER_A, "state": STATE})
    assert response.status_code in (302, 303)
    assert query_of(response.headers["Location"]) == {"state": STATE}


def test_no_state_returned_when_none_sent(app, client):
    """oidcc-rp-initiated-logout-no-state."""
    rp = portal(app)
    id_token = full_login(client, rp)["id_token"]
    response = client.get("/logout", query_string={"id_token_hint": id_token,
                                                   "post_logout_redirect_uri": AFTER_A})
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == AFTER_A
    assert prompt_none(client, rp)["error"] == "login_required"


def test_registered_query_of_post_logout_uri_is_kept(app, client):
    target = AFTER_A + "?from=idp"
    rp = portal(app, post_logout_redirect_uris=[target])
    id_token = full_login(client, rp)["id_token"]
    response = client.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": target, "state": "s1"})
    assert query_of(response.headers["Location"]) == {"from": "idp", "state": "s1"}


def test_logout_with_hint_only_logs_out_without_redirect(app, client):
    """oidcc-rp-initiated-logout-no-post-logout-redirect-uri: a page, the session ends."""
    rp = portal(app)
    id_token = full_login(client, rp)["id_token"]
    response = client.get("/logout", query_string={"id_token_hint": id_token})
    assert_page_not_redirect(response)
    assert prompt_none(client, rp)["error"] == "login_required"


def _tampered_payload(token: str) -> str:
    head, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


def _foreign_signature(token: str) -> str:
    """The same claims signed by a key that is not the OP's (another issuer's token)."""
    part = token.split(".")[1]
    data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    key = RSAKey.generate_key(2048, parameters={"kid": header(token)["kid"]})
    return jwt.encode({"alg": "RS256", "kid": header(token)["kid"]}, data, key,
                      algorithms=["RS256"])


@pytest.mark.parametrize("case", [
    "unregistered uri", "modified uri", "query added to uri", "modified hint",
    "foreign signature", "another portal's hint", "missing hint", "missing hint with client_id",
])
def test_no_redirect_without_a_valid_hint_and_registered_uri(app, client, case):
    """oidcc-rp-initiated-logout-bad-post-logout-redirect-uri, -modified-id-token-hint,
    -no-id-token-hint (and variants): the OP shows a page instead of redirecting."""
    rp = portal(app)
    rp_b = portal(app, redirect_uri=CB_B, post_logout_redirect_uris=[
        "https://portal-b.example.vn/logged-out"])
    id_token = full_login(client, rp)["id_token"]
    params = {"id_token_hint": id_token, "post_logout_redirect_uri": AFTER_A, "state": "s1"}
    if case == "unregistered uri":
        params["post_logout_redirect_uri"] = "https://evil.example/logged-out"
    elif case == "modified uri":
        params["post_logout_redirect_uri"] = AFTER_A + "-x"
    elif case == "query added to uri":
        params["post_logout_redirect_uri"] = AFTER_A + "?next=https://evil.example"
    elif case == "modified hint":
        params["id_token_hint"] = _tampered_payload(id_token)
    elif case == "foreign signature":
        params["id_token_hint"] = _foreign_signature(id_token)
    elif case == "another portal's hint":
        params["id_token_hint"] = full_login(client, rp_b)["id_token"]
    elif case == "missing hint":
        del params["id_token_hint"]
    elif case == "missing hint with client_id":
        del params["id_token_hint"]
        params["client_id"] = rp.client_id
    target = params["post_logout_redirect_uri"]
    response = client.get("/logout", query_string=params)
    assert_page_not_redirect(response, target)
    if "csrf_token" in response.text:  # a confirmation page: confirming must not redirect
        confirmed = client.post("/logout/confirm", data={
            "csrf_token": csrf_token(response.text),
            "token": re.search(r'name="token" value="([^"]+)"', response.text).group(1)})
        assert_page_not_redirect(confirmed, target)
    assert prompt_none(client, rp)["error"] == "login_required"


def test_confirmation_page_needs_its_csrf_token(app, client):
    """A logout request the OP cannot attribute is confirmed by the user, with CSRF protection."""
    rp = portal(app)
    full_login(client, rp)
    page = client.get("/logout", query_string={"post_logout_redirect_uri": AFTER_A})
    assert page.status_code == 200 and csrf_token(page.text)
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    forged = client.post("/logout/confirm", data={"token": token})
    assert forged.status_code == 400
    assert prompt_none(client, rp)["code"], "a forged confirmation must not log out"
    confirmed = client.post("/logout/confirm", data={"csrf_token": csrf_token(page.text),
                                                     "token": token})
    assert confirmed.status_code == 200 and "Location" not in confirmed.headers
    assert prompt_none(client, rp)["error"] == "login_required"


def test_hint_for_an_older_session_asks_before_logging_out(app, client):
    """An ID token from an earlier session must not silently end the current one."""
    rp = portal(app)
    old_token = full_login(client, rp)["id_token"]
    client.get("/logout", query_string={"id_token_hint": old_token})
    full_login(client, rp)
    page = client.get("/logout", query_string={"id_token_hint": old_token,
                                               "post_logout_redirect_uri": AFTER_A})
    assert page.status_code == 200 and "csrf_token" in page.text
    assert prompt_none(client, rp)["code"]


def test_logout_when_already_logged_out_still_returns_to_the_portal(app, client):
    rp = portal(app)
    id_token = full_login(client, rp)["id_token"]
    client.get("/logout", query_string={"id_token_hint": id_token})
    again = client.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": AFTER_A, "state": "again"})
    assert again.status_code in (302, 303)
    assert query_of(again.headers["Location"]) == {"state": "again"}


# -- back-channel logout ------------------------------------------------------------------------

def _check_logout_token(client, token: str, rp, id_claims: dict) -> dict:
    """OIDC Back-Channel Logout 2.4 and 2.6, as the conformance suite checks them."""
    assert header(token).get("typ") in (None, "logout+jwt")
    got = claims(client, token)
    assert got["iss"] == ISSUER
    aud = got["aud"] if isinstance(got["aud"], list) else [got["aud"]]
    assert rp.client_id in aud
    assert abs(got["iat"] - time.time()) < 300
    assert got["jti"]
    assert got["events"] == {BACKCHANNEL_EVENT: {}}
    assert "nonce" not in got
    assert got["sid"] == id_claims["sid"]
    assert got["sub"] == id_claims["sub"]
    return got


def test_backchannel_logout_token_to_every_portal_of_the_session(app, client, rp_server):
    """oidcc-backchannel-rp-initiated-logout: only `logout_token` is POSTed, to each portal
    of the session (and to no other)."""
    rp_a = portal(app, backchannel_logout_uri=rp_server.url("/bc-a"))
    rp_b = portal(app, redirect_uri=CB_B, backchannel_logout_uri=rp_server.url("/bc-b"))
    portal(app, redirect_uri="https://portal-c.example.vn/cb",
           backchannel_logout_uri=rp_server.url("/bc-c"))  # registered, never signed in
    for path in ("/bc-a", "/bc-b", "/bc-c"):
        rp_server.serve(path, "", status=200)
    token_a = full_login(client, rp_a)["id_token"]
    token_b = full_login(client, rp_b)["id_token"]
    claims_a, claims_b = claims(client, token_a), claims(client, token_b)
    assert claims_a["sid"] == claims_b["sid"]

    response = client.get("/logout", query_string={
        "id_token_hint": token_a, "post_logout_redirect_uri": AFTER_A, "state": "s"})
    assert response.status_code in (302, 303)

    (post_a,) = rp_server.received("/bc-a")
    (post_b,) = rp_server.received("/bc-b")
    assert rp_server.received("/bc-c") == []
    jtis = set()
    for post, rp, id_claims in ((post_a, rp_a, claims_a), (post_b, rp_b, claims_b)):
        assert post.method == "POST"
        assert post.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert set(post.form) == {"logout_token"} and len(post.form["logout_token"]) == 1
        jtis.add(_check_logout_token(client, post.form["logout_token"][0], rp, id_claims)["jti"])
    assert len(jtis) == 2
    assert prompt_none(client, rp_b)["error"] == "login_required"


def test_backchannel_logout_token_signed_with_the_portal_algorithm(app, client, rp_server):
    rp = portal(app, backchannel_logout_uri=rp_server.serve("/bc", "", status=200),
                id_token_signed_response_alg="ES256")
    id_token = full_login(client, rp)["id_token"]
    client.get("/logout", query_string={"id_token_hint": id_token})
    (post,) = rp_server.received("/bc")
    token = post.form["logout_token"][0]
    assert header(token)["alg"] == "ES256"
    _check_logout_token(client, token, rp, claims(client, id_token))


def test_backchannel_delivery_is_retried(app, client, rp_server):
    """The receiver fails the first time; the same logout token is delivered again."""
    rp = portal(app, backchannel_logout_uri=rp_server.serve("/bc", "", status=200))
    id_token = full_login(client, rp)["id_token"]
    rp_server.fail_next("/bc", 1, status=503)
    response = client.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": AFTER_A})
    assert response.status_code in (302, 303)
    first, second = rp_server.received("/bc")
    assert first.form == second.form
    _check_logout_token(client, second.form["logout_token"][0], rp, claims(client, id_token))


def test_backchannel_failure_does_not_block_logout(make_app, rp_server):
    app = make_app(BACKCHANNEL_LOGOUT_RETRIES=2)
    client = app.test_client()
    rp = portal(app, backchannel_logout_uri=rp_server.url("/bc"))
    rp_server.fail_next("/bc", 10)
    id_token = full_login(client, rp)["id_token"]
    response = client.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": AFTER_A})
    assert response.status_code in (302, 303)
    assert len(rp_server.received("/bc")) == 2
    assert prompt_none(client, rp)["error"] == "login_required"


def test_backchannel_to_a_private_host_is_refused_in_production(make_app, rp_server):
    app = make_app(ALLOW_LOOPBACK_FETCH=False)
    client = app.test_client()
    rp = portal(app, backchannel_logout_uri=rp_server.serve("/bc", "", status=200))
    id_token = full_login(client, rp)["id_token"]
    client.get("/logout", query_string={"id_token_hint": id_token})
    assert rp_server.requests == []
    assert prompt_none(client, rp)["error"] == "login_required"


# -- front-channel logout ------------------------------------------------------------------------

def test_frontchannel_logout_page_embeds_the_portal(app, client):
    """oidcc-frontchannel-rp-initiated-logout: the registered URI is loaded with iss and sid
    matching the ID token, the CSP lets the frame load, and the browser then returns to the
    post-logout URI with the state."""
    fc = "https://portal-a.example.vn/frontchannel?v=1"
    rp = portal(app, frontchannel_logout_uri=fc, frontchannel_logout_session_required=True)
    id_token = full_login(client, rp)["id_token"]
    sid = claims(client, id_token)["sid"]
    response = client.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": AFTER_A, "state": "fc-state"})
    assert response.status_code == 200
    frames = [html.unescape(src) for src in re.findall(r'<iframe[^>]* src="([^"]+)"',
                                                        response.text)]
    assert len(frames) == 1
    assert frames[0].startswith("https://portal-a.example.vn/frontchannel?")
    assert query_of(frames[0]) == {"v": "1", "iss": ISSUER, "sid": sid}
    csp = response.headers["Content-Security-Policy"]
    frame_src = re.search(r"frame-src ([^;]+)", csp).group(1).split()
    assert "https://portal-a.example.vn" in frame_src
    onward = re.search(r'data-next="([^"]+)"', response.text)
    assert onward, "the page must continue to the post-logout URI by itself"
    assert html.unescape(onward.group(1)) == AFTER_A + "?state=fc-state"
    scripts = re.findall(r"<script[^>]*>", response.text)
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert scripts and all(f'nonce="{nonce}"' in s or "src=" in s for s in scripts)
    assert prompt_none(client, rp)["error"] == "login_required"


def test_frontchannel_for_every_portal_of_the_session(app, client):
    rp_a = portal(app, frontchannel_logout_uri="https://portal-a.example.vn/fc")
    rp_b = portal(app, redirect_uri=CB_B, frontchannel_logout_uri="https://portal-b.example.vn/fc")
    full_login(client, rp_a)
    token_b = full_login(client, rp_b)["id_token"]
    response = client.get("/logout", query_string={"id_token_hint": token_b})
    frames = re.findall(r'<iframe[^>]* src="([^"]+)"', response.text)
    assert {f.split("?")[0] for f in frames} == {"https://portal-a.example.vn/fc",
                                                 "https://portal-b.example.vn/fc"}
    frame_src = re.search(r"frame-src ([^;]+)", response.headers["Content-Security-Policy"])
    assert set(frame_src.group(1).split()) == {"https://portal-a.example.vn",
                                               "https://portal-b.example.vn"}
