"""Security headers on every response: CSP with frame-ancestors 'none' and nonce-only scripts
(CSP Level 3; RFC 9700 4.16 clickjacking), X-Frame-Options DENY (RFC 7034),
X-Content-Type-Options nosniff, Referrer-Policy no-referrer on authentication pages
(RFC 9700 4.2.4), no caching of authentication pages (RFC 6749 5.1 spirit, RFC 9700 4.2),
HSTS in production (RFC 6797).

Pages are collected from `app.url_map`, so a new page is checked automatically.
"""

from __future__ import annotations

import re

import pytest

from idp import create_app
from tests.conftest import base_config
from tests.helpers import authorize_params, full_login, login, query_of, register_client

AUTH_PATHS = ("/authorize", "/login", "/consent", "/select-account", "/logout", "/account",
              "/ops")
WEAK_REFERRER_POLICIES = {"unsafe-url", "no-referrer-when-downgrade", "origin-when-cross-origin"}
SAMPLE_ARGS = {"client_id": "unknown-client", "code": "en", "filename": "site.css",
               "side": "front", "case_id": "unknown-case", "media_id": "unknown-media",
               "account_id": "unknown-account", "decision_id": "0", "value": "unknown"}


def _csp(response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_secure_headers(response, path: str) -> None:
    where = f"{path} ({response.status_code})"
    csp = _csp(response)
    assert csp["frame-ancestors"] == ["'none'"], where
    assert csp["default-src"] == ["'none'"], where
    assert csp["base-uri"] == ["'none'"], where
    scripts = csp["script-src"]
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, where
    assert any(s.startswith("'nonce-") for s in scripts), where
    assert response.headers["X-Content-Type-Options"] == "nosniff", where
    assert response.headers["X-Frame-Options"] == "DENY", where
    referrer = response.headers["Referrer-Policy"]
    if path.startswith(AUTH_PATHS):
        assert referrer == "no-referrer", where
        assert "no-store" in response.headers.get("Cache-Control", ""), where
    else:
        assert referrer not in WEAK_REFERRER_POLICIES, where


def _get_paths(app) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{arg}>", SAMPLE_ARGS[arg], path)
        paths.append(path)
    return sorted(paths)


def _check_all(app, client):
    checked = []
    for path in _get_paths(app):
        response = client.get(path)
        assert_secure_headers(response, path)
        response.close()
        checked.append(path)
    return checked


def test_every_page_anonymous(app, client):
    checked = _check_all(app, client)
    assert {"/", "/login", "/account", "/authorize", "/logout", "/jwks"} <= set(checked)


def test_every_page_signed_in(app, client):
    login(client)
    _check_all(app, client)


def test_every_post_endpoint_and_error_page(app, client):
    """JSON answers, error pages (400, 404, 405) and POST endpoints carry them too."""
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods:
            response = client.post(re.sub(r"<(?:\w+:)?(\w+)>", "x", rule.rule), data={})
            assert_secure_headers(response, rule.rule)
    for path in ("/no-such-page", "/token", "/authorize?client_id=nobody"):
        assert_secure_headers(client.get(path), path)


def test_interaction_pages(app, client):
    """Consent and account selection, reached through a real authorization request."""
    rp = register_client(app)
    start = client.get("/authorize", query_string=authorize_params(rp, prompt="select_account"))
    interaction = query_of(start.headers["Location"])["interaction"]
    login(client, interaction=interaction)
    for path in ("/select-account", "/consent", "/authorize/resume"):
        response = client.get(path, query_string={"interaction": interaction})
        assert_secure_headers(response, path)


def test_script_nonce_matches_the_policy_and_changes_every_time(client):
    """CSP Level 3 nonces: the page's scripts carry the nonce the header allows, and a fresh
    one per response (a fixed nonce would be an allow-list for injected scripts)."""
    first, second = client.get("/login"), client.get("/login")
    nonces = []
    for response in (first, second):
        header = next(s for s in _csp(response)["script-src"] if s.startswith("'nonce-"))
        nonce = header[len("'nonce-"):-1]
        scripts = re.findall(r"<script[^>]*>", response.text)
        assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts)
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_no_inline_event_handlers_or_inline_scripts_without_nonce(app, client):
    """With script-src limited to 'self' and a nonce, inline handlers would break; none is
    used on the citizen pages."""
    login(client)
    for path in ("/login", "/account", "/account/totp", "/logout"):
        page = client.get(path).text
        assert not re.search(r"\son[a-z]+=", page), path
        for tag in re.findall(r"<script[^>]*>", page):
            assert "nonce=" in tag, (path, tag)


def test_form_post_page_may_post_only_to_the_client(app, client):
    """OAuth 2.0 Form Post Response Mode: form-action allows exactly the client's origin, and
    the page still cannot be framed."""
    rp = register_client(app, first_party=True)
    full_login(client, rp)
    response = client.get("/authorize", query_string=authorize_params(
        rp, response_mode="form_post"))
    assert response.status_code == 200
    csp = _csp(response)
    assert csp["form-action"] == ["'self'", "https://portal-a.example.vn"]
    assert_secure_headers(response, "/authorize")


def test_front_channel_logout_page_frames_only_the_portals(app, client):
    """OIDC Front-Channel Logout 1.0: frame-src lists the portals' origins, nothing else."""
    rp = register_client(app, first_party=True,
                         frontchannel_logout_uri="https://portal-a.example.vn/fc-logout")
    tokens = full_login(client, rp)
    response = client.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert response.status_code == 200
    assert _csp(response)["frame-src"] == ["https://portal-a.example.vn"]
    assert_secure_headers(response, "/logout")
    assert _csp(client.get("/login"))["frame-src"] == ["'none'"]


def test_session_cookies_are_httponly_and_samesite(client):
    cookies = client.get("/login").headers.getlist("Set-Cookie")  # the flow cookie (CSRF)
    cookies += login(client).headers.getlist("Set-Cookie")  # the SSO session
    for name in ("idp_session", "idp_flow"):
        cookie = next(c for c in cookies if c.startswith(name + "="))
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


@pytest.fixture
def production_app():
    """A production-configured app; only pages that touch neither database nor Redis are
    requested, so no PostgreSQL or Redis is needed here."""
    return create_app(base_config(
        IDP_ENV="production", ISSUER="https://id.dinhdanh.example.vn",
        DATABASE_URL="postgresql+psycopg://idp@127.0.0.1:9/idp", REDIS_URL="redis://127.0.0.1:9/0",
        REGISTRATION_INITIAL_ACCESS_TOKEN="not-used-here", TESTING=True))


def test_production_adds_hsts(production_app):
    """RFC 6797: browsers must only ever use https with the production issuer."""
    client = production_app.test_client()
    for path in ("/static/site.css", "/no-such-page"):
        response = client.get(path)
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert_secure_headers(response, path)
        response.close()


def test_development_does_not_pin_hsts(client):
    """No HSTS on the loopback development issuer (it would break http://127.0.0.1)."""
    assert "Strict-Transport-Security" not in client.get("/").headers
