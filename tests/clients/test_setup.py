"""`python -m clients setup`: the three portals registered with fixed ids, their own keys and
sectors; running it again updates the metadata and keeps the keys."""

from __future__ import annotations

import json
import stat

from clients import PORTALS
from clients.setup import setup_portals
from idp.clients import get_client


def test_setup_registers_the_portals_and_is_idempotent(app, tmp_path):
    lines = list(setup_portals(instance=str(tmp_path), app=app))
    assert len(lines) == 3 and all(" created " in line for line in lines)
    key_file = tmp_path / "clients" / "public_services" / "key.jwk"
    first_key = key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    info = json.loads((tmp_path / "clients" / "public_services" / "client.json").read_text())
    assert info["client_id"] == "portal-dichvucong" and info["issuer"] == app.config["ISSUER"]
    assert info["base_url"] == "http://127.0.0.1:8201"

    again = list(setup_portals(instance=str(tmp_path), app=app,
                               base_urls={"public_services": "http://127.0.0.1:9999"}))
    assert all(" updated " in line for line in again)
    assert key_file.read_text() == first_key
    with app.app_context():
        for portal in PORTALS.values():
            client = get_client(portal.client_id)
            assert client.meta("sector") == portal.sector
            assert client.meta("token_endpoint_auth_method") == "private_key_jwt"
            assert client.meta("require_pushed_authorization_requests") is True
            assert client.meta("backchannel_logout_session_required") is True
        moved = get_client("portal-dichvucong")
        assert moved.meta("redirect_uris") == ["http://127.0.0.1:9999/callback"]
        assert moved.meta("backchannel_logout_uri") == "http://127.0.0.1:9999/backchannel-logout"
        assert moved.meta("jwks")["keys"][0]["kid"] == json.loads(first_key)["kid"]
