"""The portal app in process, with a stand-in IdP: what a citizen sees on errors (translated
pages, 4xx, never a stack trace), CSRF, step-up redirects, and back-channel logout by sid."""

from __future__ import annotations

import json
import time

import pytest

from clients.portal import create_app
from clients.portal.store import key_hash
from clients.portal.views import safe_next
from clients.setup import ensure_key

from .servers import compile_translations
from .tokens import CLIENT_ID, ISSUER, FakeProvider, id_claims, logout_claims, sign

COOKIE = "dvc_session"


@pytest.fixture
def app(tmp_path):
    compile_translations()
    folder = tmp_path / "clients" / "public_services"
    ensure_key(folder / "key.jwk")
    (folder / "client.json").write_text(json.dumps({
        "client_id": CLIENT_ID, "issuer": ISSUER, "base_url": "http://127.0.0.1:8201",
        "key_file": "key.jwk", "name": "public_services"}))
    app = create_app("public_services", {"PORTAL_INSTANCE": str(tmp_path), "REDIS_URL": ""})
    app.extensions["oidc"].provider = FakeProvider()
    yield app
    app.extensions["portal_store"].close()


def put_session(app, client, data: dict, value: str = "cookie-value") -> None:
    app.extensions["portal_store"].save(key_hash(value), data, 600)
    client.set_cookie(COOKIE, value, domain="localhost")


def pending(state="st", **changes) -> dict:
    entry = {"nonce": "n-0S6_WzA2Mj", "code_verifier": "v" * 50, "acr_values": [],
             "max_age": None, "started": time.time(), "next": "/apply"}
    return {"pending": {state: {**entry, **changes}}}


def signed_in(sid="sid-1", acr="urn:dinhdanh:loa:1") -> dict:
    return {"user": {"sub": "pairwise-sub", "sid": sid, "acr": acr, "amr": ["pwd"],
                     "auth_time": 1, "id_token": "x.y.z", "claims": {"name": "Nguyễn Văn A"}},
            "csrf": "token-1"}


def test_vietnamese_by_default_english_on_request(app):
    client = app.test_client()
    assert 'lang="vi"' in client.get("/").text and "Đăng nhập bằng DinhDanh" in client.get("/").text
    english = client.get("/?lang=en")
    assert 'lang="en"' in english.text and "Sign in with DinhDanh" in english.text
    assert "Sign in with DinhDanh" in client.get("/").text  # remembered in the session
    cookie = english.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_me_is_401_json_when_signed_out(app):
    response = app.test_client().get("/me")
    assert response.status_code == 401 and response.json == {"error": "not_signed_in"}


def test_callback_signs_in_after_every_check(app, monkeypatch):
    client = app.test_client()
    put_session(app, client, pending())
    oidc = app.extensions["oidc"]
    monkeypatch.setattr(oidc, "exchange", lambda code, verifier: {
        "access_token": "AT", "id_token": sign(id_claims())})
    monkeypatch.setattr(oidc, "userinfo", lambda token: {"sub": "pairwise-sub",
                                                         "name": "Nguyễn Văn A"})
    response = client.get(f"/callback?state=st&code=c&iss={ISSUER}")
    assert response.status_code == 303 and response.headers["Location"] == "/apply"
    me = client.get("/me").json
    assert me["sub"] == "pairwise-sub" and me["sid"] == "sid-1" and me["name"] == "Nguyễn Văn A"
    # The session cookie changed at sign-in (no fixation) and the state is spent.
    assert client.get_cookie(COOKIE).value != "cookie-value"
    assert client.get(f"/callback?state=st&code=c&iss={ISSUER}").status_code == 400


def test_callback_refuses_a_token_for_another_browser(app, monkeypatch):
    client = app.test_client()
    put_session(app, client, pending())
    monkeypatch.setattr(app.extensions["oidc"], "exchange", lambda code, verifier: {
        "access_token": "AT", "id_token": sign(id_claims(nonce="someone-else"))})
    response = client.get(f"/callback?state=st&code=c&iss={ISSUER}")
    assert response.status_code == 400 and "Không xác minh được lần đăng nhập" in response.text
    assert client.get("/me").status_code == 401


@pytest.mark.parametrize("query, status, text", [
    ("state=st&error=access_denied&iss=" + ISSUER, 403, "Quyền truy cập không được cho phép"),
    ("state=st&error=unmet_authentication_requirements&iss=" + ISSUER, 403,
     "công an cấp xã"),
    ("state=st&error=login_required&iss=" + ISSUER, 400, "Vui lòng đăng nhập"),
    ("state=st&error=temporarily_unavailable&iss=" + ISSUER, 400, "temporarily_unavailable"),
    ("state=unknown&code=c&iss=" + ISSUER, 400, "không bắt đầu từ đây"),
    ("code=c&iss=" + ISSUER, 400, "không bắt đầu từ đây"),
    ("state=st&code=c&iss=https://evil.example", 400, "kiểm tra an toàn"),
    ("state=st&code=c", 400, "kiểm tra an toàn"),
    ("state=st&iss=" + ISSUER, 400, "không hợp lệ"),
])
def test_callback_errors_are_clean_pages(app, query, status, text):
    client = app.test_client()
    put_session(app, client, pending())
    response = client.get(f"/callback?{query}")
    assert response.status_code == status
    assert text in response.text and "Traceback" not in response.text
    assert 'role="alert"' in response.text


def test_an_old_sign_in_has_expired(app):
    client = app.test_client()
    put_session(app, client, pending(started=time.time() - 3600))
    response = client.get(f"/callback?state=st&code=c&iss={ISSUER}")
    assert response.status_code == 400 and "đã hết hạn" in response.text


def test_error_pages_in_english(app):
    client = app.test_client()
    client.get("/?lang=en")
    response = client.get(f"/callback?state=nope&iss={ISSUER}")
    assert response.status_code == 400 and "This sign-in was not started here" in response.text


def test_logout_needs_the_form_token(app):
    client = app.test_client()
    put_session(app, client, signed_in())
    assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 400
    assert client.get("/me").status_code == 200
    response = client.post("/logout", data={"csrf_token": "token-1"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"{ISSUER}/logout?id_token_hint=x.y.z")
    assert "post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A8201%2F" in \
        response.headers["Location"]
    assert client.get("/me").status_code == 401


def test_backchannel_logout_ends_the_sessions_of_that_sid(app):
    one, two, other = app.test_client(), app.test_client(), app.test_client()
    put_session(app, one, signed_in("sid-1"), "a")
    put_session(app, two, signed_in("sid-1"), "b")
    put_session(app, other, signed_in("sid-2"), "c")
    token = sign(logout_claims(sid="sid-1"), header={"typ": "logout+jwt"})
    response = app.test_client().post("/backchannel-logout", data={"logout_token": token})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert one.get("/me").status_code == 401 and two.get("/me").status_code == 401
    assert other.get("/me").status_code == 200
    replay = app.test_client().post("/backchannel-logout", data={"logout_token": token})
    assert replay.status_code == 400 and replay.json["error"] == "invalid_request"


@pytest.mark.parametrize("data", [{}, {"logout_token": ""}, {"logout_token": "a.b.c"},
                                  {"logout_token": "é" * 20000}])
def test_backchannel_logout_refuses_garbage(app, data):
    response = app.test_client().post("/backchannel-logout", data=data)
    assert response.status_code == 400


def test_level_2_service_steps_up(app):
    client = app.test_client()
    put_session(app, client, signed_in(acr="urn:dinhdanh:loa:1"))
    response = client.get("/land")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=%2Fland&acr=urn%3Adinhdanh%3Aloa%3A2"
    put_session(app, client, signed_in(acr="urn:dinhdanh:loa:2"), "level2")
    assert client.get("/land").status_code == 200


def test_apply_form(app):
    client = app.test_client()
    assert client.post("/apply", data={"kind": "residence"}).status_code == 401
    put_session(app, client, signed_in())
    assert client.post("/apply", data={"kind": "residence", "details": "x"}).status_code == 400
    bad = client.post("/apply", data={"csrf_token": "token-1", "kind": "nope", "details": ""})
    assert bad.status_code == 400 and 'aria-invalid="true"' in bad.text
    done = client.post("/apply", data={"csrf_token": "token-1", "kind": "residence",
                                       "details": "Để làm thủ tục nhập học"})
    assert done.status_code == 200 and 'id="reference">DVC-' in done.text


@pytest.mark.parametrize("value, expected", [
    ("/land", "/land"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
    ("/\\evil.example", "/"), (None, "/"), ("/a\nb", "/")])
def test_next_stays_on_the_portal(value, expected):
    assert safe_next(value) == expected


@pytest.mark.parametrize("path", [
    "/login?acr=urn:other", "/callback?state=%00&iss=%ff", "/callback?state=a&state=b",
    "/me?lang=xx", "/logout?lang=en", "/nowhere", "/?state=%ff%fe", "/contributions"])
def test_bad_input_never_crashes(app, path):
    response = app.test_client().get(path)
    assert response.status_code < 500
