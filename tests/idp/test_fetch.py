"""The outbound fetcher's SSRF guard (idp/fetch.py).

Every URL a relying party gives us (jwks_uri, sector_identifier_uri, request_uri, back-channel
logout URI) is fetched through it. Outside development it must refuse private, loopback and
link-local targets and plain http; everywhere it must refuse redirects, oversized bodies and
servers that answer too slowly (node-oidc-provider's SSRF guard; RFC 9101 10.4.1,
OIDC Registration 5 "sector_identifier_uri", RFC 7591 5).
"""

from __future__ import annotations

import pytest

from idp.fetch import FetchError, fetch, fetch_json, fetch_text, resolve_checked


@pytest.fixture
def strict_app(make_app):
    """Production fetch policy (the other production settings do not matter here)."""
    return make_app(ALLOW_LOOPBACK_FETCH=False)


PRIVATE_TARGETS = [
    "https://127.0.0.1/jwks",
    "https://localhost/jwks",
    "https://[::1]/jwks",
    "https://10.1.2.3/jwks",
    "https://192.168.0.10/jwks",
    "https://172.16.5.5/jwks",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata service
    "https://100.64.0.1/jwks",  # carrier-grade NAT
    "https://0.0.0.0/jwks",
    "https://[fc00::1]/jwks",
    "https://[fe80::1]/jwks",
    "https://[::ffff:127.0.0.1]/jwks",  # IPv4-mapped loopback
    "https://[64:ff9b::7f00:1]/jwks",  # NAT64 of 127.0.0.1
    "https://[2002:7f00:1::]/jwks",  # 6to4 of 127.0.0.1
    "https://[::127.0.0.1]/jwks",  # IPv4-compatible loopback
]


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
def test_private_and_loopback_addresses_are_refused_before_connecting(url):
    with pytest.raises(FetchError, match="private or reserved"):
        resolve_checked(url, allow_private=False)


def test_public_address_passes_the_address_check():
    assert resolve_checked("https://8.8.8.8/jwks", allow_private=False)[1] == "8.8.8.8"


def test_fetch_refuses_private_targets_outside_development(strict_app):
    with strict_app.app_context():
        for url in PRIVATE_TARGETS:
            with pytest.raises(FetchError, match="private or reserved"):
                fetch(url)


def test_loopback_server_is_refused_when_loopback_fetch_is_off(strict_app, rp_server):
    url = rp_server.serve("/jwks", {"keys": []})
    with strict_app.app_context():
        with pytest.raises(FetchError):
            fetch_json(url)  # http:// and loopback: refused twice over
        with pytest.raises(FetchError):
            fetch_json(url.replace("http://", "https://"))
    assert rp_server.requests == [], "the guard must refuse before connecting"


UNSAFE_URLS = [
    "http://portal.example.vn/jwks",  # plain http outside development
    "ftp://portal.example.vn/jwks",
    "file:///etc/passwd",
    "gopher://portal.example.vn/",
    "https://user:pass@portal.example.vn/jwks",  # credentials in the URL
    "https:///jwks",
]


def test_unsafe_schemes_and_urls_are_refused(strict_app):
    with strict_app.app_context():
        for url in UNSAFE_URLS:
            with pytest.raises(FetchError):
                fetch(url)


def test_unspecified_address_is_refused_even_in_development(app):
    with app.app_context(), pytest.raises(FetchError):
        fetch("http://0.0.0.0:9/")


def test_development_fetches_loopback_json(app, rp_server):
    url = rp_server.serve("/sector.json", ["https://portal-a.example.vn/callback"])
    with app.app_context():
        assert fetch_json(url) == ["https://portal-a.example.vn/callback"]


def test_redirects_are_not_followed(app, rp_server):
    target = rp_server.serve("/real.json", {"keys": []})
    url = rp_server.redirect("/moved.json", target)
    with app.app_context(), pytest.raises(FetchError):
        fetch_json(url)
    assert rp_server.received("/real.json") == []


def test_oversized_body_is_refused(make_app, rp_server):
    app = make_app(FETCH_MAX_BYTES=1000)
    url = rp_server.serve("/big.json", {"keys": ["x" * 5000]})
    small = rp_server.serve("/small.json", {"keys": []})
    with app.app_context():
        with pytest.raises(FetchError):
            fetch_json(url)
        assert fetch_json(small) == {"keys": []}


def test_server_that_answers_late_times_out(make_app, rp_server):
    app = make_app(FETCH_TIMEOUT=1)
    url = rp_server.serve("/slow.json", {"keys": []}, delay=1.6)
    with app.app_context(), pytest.raises(FetchError):
        fetch_json(url)


def test_server_that_trickles_its_body_is_cut_off(make_app, rp_server):
    """Each chunk arrives within the socket timeout, but the whole answer takes too long."""
    app = make_app(FETCH_TIMEOUT=1)
    url = rp_server.serve("/trickle.json", {"keys": ["x" * 200]}, trickle=(12, 0.25))
    with app.app_context(), pytest.raises(FetchError):
        fetch_json(url)
    assert "/trickle.json" not in rp_server.completed, "the OP must hang up, not wait"


def test_non_200_and_non_json_answers_are_errors(app, rp_server):
    missing = rp_server.url("/nothing-here")
    text = rp_server.serve("/text", "not json")
    with app.app_context():
        with pytest.raises(FetchError):
            fetch_json(missing)
        with pytest.raises(FetchError):
            fetch_json(text)
        assert fetch_text(text) == "not json"


def test_post_sends_form_and_no_ambient_credentials(app, rp_server, monkeypatch):
    """Back-channel deliveries POST a form; environment proxies are never used."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")
    url = rp_server.serve("/bc", "", status=200)
    with app.app_context():
        response = fetch(url, method="POST", data={"logout_token": "abc"})
    assert response.status_code == 200
    (received,) = rp_server.received("/bc", "POST")
    assert received.form == {"logout_token": ["abc"]}
    assert "Authorization" not in received.headers and "Cookie" not in received.headers


def test_server_that_trickles_its_headers_is_cut_off(make_app, rp_server):
    """The deadline covers the headers too, not only the body."""
    app = make_app(FETCH_TIMEOUT=1)
    url = rp_server.serve("/slow-headers.json", {"keys": []}, slow_headers=(12, 0.25))
    with app.app_context(), pytest.raises(FetchError):
        fetch_json(url)
    assert "/slow-headers.json" not in rp_server.completed, "the OP must hang up, not wait"
