"""Changing how one signs in needs a recent login; signing in again keeps or ends a session."""

from __future__ import annotations

import json

from idp import sessions, store
from idp.cli import create_citizen
from tests.helpers import csrf_token, full_login, login, register_client
from tests.rp_server import RPServer


def _age_session(app, client, seconds: int) -> None:
    """Pretend the login happened `seconds` ago (instead of waiting)."""
    cookie = client.get_cookie("idp_session").value
    with app.test_request_context(headers={"Cookie": f"idp_session={cookie}"}):
        sess = sessions.current()
        sess["auth_time"] -= seconds
        store.put_json(f"sso:{sess['handle']}", sess, 600)


def test_authenticator_changes_ask_for_a_fresh_login(app, client):
    login(client)
    assert client.get("/account/totp").status_code == 200
    _age_session(app, client, app.config["REAUTH_MAX_AGE"] + 5)
    response = client.get("/account/totp")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?reauth=1")
    token = csrf_token(client.get("/account").text)
    passkey = client.post("/account/passkeys/options", json={}, headers={"X-CSRFToken": token})
    assert passkey.status_code == 401 and passkey.json["error"] == "passkey_failed"
    # After signing in again the citizen lands back on the page they wanted.
    page = client.get(response.headers["Location"])
    assert 'role="status"' in page.text
    done = login(client)
    assert done.headers["Location"] == "/account/totp"


def test_signing_in_again_as_the_same_citizen_keeps_the_session_and_its_portals(app, client):
    rp = register_client(app, first_party=True)
    first = json.loads(json.dumps(full_login(client, rp)))
    from joserfc import jwt

    sid = jwt.decode(first["id_token"], _keys(app)).claims["sid"]
    cookie_before = client.get_cookie("idp_session").value
    login(client)
    assert client.get_cookie("idp_session").value != cookie_before  # no session fixation
    second = full_login(client, rp, prompt="login")
    assert jwt.decode(second["id_token"], _keys(app)).claims["sid"] == sid


def test_signing_in_as_someone_else_logs_the_previous_citizen_out_of_portals(app, client):
    with RPServer() as receiver:
        receiver.serve("/backchannel", "")
        rp = register_client(app, first_party=True,
                             backchannel_logout_uri=receiver.url("/backchannel"))
        full_login(client, rp)
        with app.app_context():
            create_citizen("079200000002", "Second-Citizen-2", full_name="Trần Văn Bình")
        login(client, pid="079200000002", password="Second-Citizen-2")
        assert receiver.received("/backchannel", "POST"), \
            "the first citizen's portal was not told about the logout"


def _keys(app):
    from joserfc.jwk import KeySet

    with app.app_context():
        from idp import keys

        return KeySet.import_key_set(keys.jwks())
