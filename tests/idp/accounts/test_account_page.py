"""The citizen's account page: sessions, consents and sign-in history, and what withdrawing
a consent or ending a session does for real (RFC 7009 2.1 / RFC 9700 4.14: withdrawn consent
revokes the grant's tokens; OIDC Back-Channel Logout 1.0 2.5: an ended session is announced
to the portals in it).
"""

from __future__ import annotations

import html
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers import authorize_params, csrf_token, full_login, login, query_of, register_client


def _rows(page_html: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", page_html, flags=re.DOTALL)


def _session_rows(page_html: str) -> list[tuple[str, bool]]:
    """(handle, is this browser) for every session listed."""
    out = []
    for row in _rows(page_html):
        match = re.search(r'name="handle" value="([^"]+)"', row)
        if match:
            out.append((match.group(1), "<strong>(" in row))  # "(this browser)", any language
    return out


def _english_account(client):
    client.get("/lang/en")
    page = client.get("/account")
    assert page.status_code == 200
    return page


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_account_page_needs_sign_in(client):
    response = client.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_account_page_lists_sessions_with_this_browser_marked(app, client):
    """Every browser where the citizen is signed in, so a forgotten one can be ended."""
    login(client)
    other = app.test_client()
    other.environ_base["HTTP_USER_AGENT"] = "Cheap-Phone-Browser/1.0"
    login(other)
    page = _english_account(client)
    rows = _session_rows(page.text)
    assert len(rows) == 2
    assert sum(1 for _, mine in rows if mine) == 1
    assert "Cheap-Phone-Browser/1.0" in page.text


def test_account_page_lists_consents_with_plain_language_claims(app, client):
    """OIDC Core 3.1.2.4: what the citizen agreed to share, per portal, in plain words."""
    rp = register_client(app)
    client.get("/lang/en")
    full_login(client, rp, scope="openid profile email")
    page = html.unescape(client.get("/account").text)
    assert "Cổng dịch vụ công A" in page
    assert "Your full name" in page and "Your email address" in page
    assert f'name="client_id" value="{rp.client_id}"' in page


def test_account_page_shows_sign_in_history(app, client):
    """The citizen can read their own login history, failures included."""
    login(client, password="Wrong-Password-9")
    login(client)
    page = _english_account(client)
    texts = {"Signed in": "login.success", "Wrong password entered": "login.failure"}
    history = [row for row in _rows(page.text) if any(f"<td>{t}</td>" in row for t in texts)]
    events = [texts[re.search(r"<td>(Signed in|Wrong password entered)</td>", row).group(1)]
              for row in history]
    assert events[:2] == ["login.success", "login.failure"]  # newest first, in plain words
    assert all("127.0.0.1" in row for row in history)


def test_history_shows_only_the_citizens_own_events(app, client):
    from idp.cli import create_citizen

    with app.app_context():
        create_citizen("079200000002", "Second-Citizen-2", full_name="Trần Văn Bình")
    stranger = app.test_client()
    login(stranger, pid="079200000002", password="Wrong-Password-9")
    login(client)
    page = _english_account(client)
    assert len([row for row in _rows(page.text) if "Wrong password entered" in row]) == 0


def _revoke(client, client_id: str):
    page = client.get("/account")
    return client.post("/account/consents/revoke", data={"csrf_token": csrf_token(page.text),
                                                         "client_id": client_id})


def test_withdrawing_consent_revokes_tokens_and_asks_again(app, client):
    """Withdrawing consent: the portal's refresh and access tokens stop working
    (RFC 6749 6 invalid_grant, RFC 6750 invalid_token, RFC 7662 active=false), and its next
    authorization request shows the consent page again."""
    rp = register_client(app)
    tokens = full_login(client, rp, scope="openid profile offline_access")
    assert client.get("/userinfo", headers=_bearer(tokens["access_token"])).status_code == 200

    response = _revoke(client, rp.client_id)
    assert response.status_code == 302
    assert f'value="{rp.client_id}"' not in client.get("/account").text

    refreshed = client.post("/token", auth=rp.auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"
    info = client.get("/userinfo", headers=_bearer(tokens["access_token"]))
    assert info.status_code == 401 and info.json["error"] == "invalid_token"
    introspected = client.post("/introspect", auth=rp.auth,
                               data={"token": tokens["access_token"]})
    assert introspected.json == {"active": False}

    again = client.get("/authorize", query_string=authorize_params(rp))
    assert again.status_code == 302 and again.headers["Location"].startswith("/consent?")
    silent = client.get("/authorize", query_string=authorize_params(rp, prompt="none"))
    assert query_of(silent.headers["Location"])["error"] == "consent_required"


def test_consenting_again_after_withdrawal_gives_working_tokens(app, client):
    """Tokens issued after a new consent work, even within the same second as the
    withdrawal."""
    rp = register_client(app)
    full_login(client, rp, scope="openid offline_access")
    _revoke(client, rp.client_id)
    tokens = full_login(client, rp, scope="openid offline_access")
    assert client.get("/userinfo", headers=_bearer(tokens["access_token"])).status_code == 200
    refreshed = client.post("/token", auth=rp.auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200


def test_withdrawing_one_consent_leaves_other_portals_alone(app, client):
    rp_a = register_client(app)
    rp_b = register_client(app, redirect_uris=["https://portal-b.example.vn/cb"],
                           client_name="Cổng B")
    tokens_a = full_login(client, rp_a)
    tokens_b = full_login(client, rp_b)
    _revoke(client, rp_a.client_id)
    assert client.get("/userinfo", headers=_bearer(tokens_a["access_token"])).status_code == 401
    assert client.get("/userinfo", headers=_bearer(tokens_b["access_token"])).status_code == 200


def test_withdraw_for_unknown_portal_changes_nothing(app, client):
    rp = register_client(app)
    tokens = full_login(client, rp)
    assert _revoke(client, "not-a-client").status_code == 302
    assert client.get("/userinfo", headers=_bearer(tokens["access_token"])).status_code == 200


class _Receiver:
    """A portal's back-channel logout endpoint on 127.0.0.1 (an ephemeral port)."""

    def __init__(self):
        self.tokens: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                outer.tokens.extend(form.get("logout_token", []))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    rec = _Receiver()
    yield rec
    rec.close()


def test_ending_another_session_signs_that_browser_out(app, client, receiver):
    """The citizen ends the session of a lost phone from the account page: that browser is
    signed out (prompt=none then fails with login_required, OIDC Core 3.1.2.6), this one stays
    signed in, and the portal used there receives a logout token for that session (OIDC
    Back-Channel Logout 1.0 2.4)."""
    rp = register_client(app, first_party=True, backchannel_logout_uri=receiver.url)
    phone = app.test_client()
    phone_tokens = full_login(phone, rp)
    login(client)
    page = client.get("/account")
    (phone_handle,) = [handle for handle, mine in _session_rows(page.text) if not mine]
    ended = client.post("/account/sessions/end", data={"csrf_token": csrf_token(page.text),
                                                       "handle": phone_handle})
    assert ended.status_code == 302

    assert phone.get("/account").status_code == 302
    silent = phone.get("/authorize", query_string=authorize_params(rp, prompt="none"))
    assert query_of(silent.headers["Location"])["error"] == "login_required"
    assert client.get("/account").status_code == 200
    assert len(_session_rows(client.get("/account").text)) == 1

    keyset = KeySet.import_key_set(client.get("/jwks").json)
    id_claims = jwt.decode(phone_tokens["id_token"], keyset).claims
    assert len(receiver.tokens) == 1
    logout = jwt.decode(receiver.tokens[0], keyset).claims
    assert logout["sid"] == id_claims["sid"] and logout["sub"] == id_claims["sub"]
    assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"]


def test_ending_this_browsers_own_session_signs_out(app, client):
    login(client)
    page = client.get("/account")
    ((handle, mine),) = _session_rows(page.text)
    assert mine
    client.post("/account/sessions/end", data={"csrf_token": csrf_token(page.text),
                                               "handle": handle})
    assert client.get("/account").status_code == 302


def test_cannot_end_another_citizens_session(app, client):
    """A session handle only works for its own account."""
    from idp.cli import create_citizen

    with app.app_context():
        create_citizen("079200000002", "Second-Citizen-2", full_name="Trần Văn Bình")
    login(client)
    (victim_handle, _), = _session_rows(client.get("/account").text)
    attacker = app.test_client()
    login(attacker, pid="079200000002", password="Second-Citizen-2")
    page = attacker.get("/account")
    attacker.post("/account/sessions/end", data={"csrf_token": csrf_token(page.text),
                                                 "handle": victim_handle})
    assert client.get("/account").status_code == 200


def test_sign_out_everywhere_in_this_browser(app, client):
    login(client)
    page = client.get("/account")
    response = client.post("/logout/confirm", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code in (200, 303)
    assert client.get("/account").status_code == 302


def test_account_page_does_not_leak_secrets(app, client):
    """No ID number, cookie value or password hash on the page (shoulder surfing, caches)."""
    response = login(client)
    cookie = re.search(r"idp_session=([^;]+)", "".join(response.headers.getlist("Set-Cookie")))
    page = client.get("/account")
    assert "001199000001" not in page.text
    assert cookie.group(1) not in page.text
    assert "argon2" not in page.text
    assert page.headers["Cache-Control"] == "no-store"
    json.dumps(_session_rows(page.text))  # the listed handles are plain identifiers
