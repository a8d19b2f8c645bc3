"""Signing keys and their rotation (idp/keys.py, `flask keys ...`).

Re-creates the conformance checks on the JWKS (every key has a unique kid, no private or
symmetric material, RSA n/e and EC x/y unpadded base64url) and the Dynamic plan's
oidcc-server-rotate-keys: after a rotation a new key with a new kid is published, the old one
stays, and what it signed still verifies (RFC 7517, OIDC Core 10.1.1).
"""

from __future__ import annotations

import datetime as dt
import re

from joserfc import jwt
from joserfc.jwk import KeySet

from idp import keys
from idp.extensions import db
from idp.models import SigningKey
from tests.helpers import full_login, register_client

B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _jwks(client) -> dict:
    response = client.get("/jwks")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.json


def _kids(client) -> set[str]:
    return {k["kid"] for k in _jwks(client)["keys"]}


def _verify(client, token: str) -> jwt.Token:
    """Verify like a relying party: with the published JWKS and the header's kid."""
    return jwt.decode(token, KeySet.import_key_set(_jwks(client)), algorithms=["RS256", "ES256"])


def _header(token: str) -> dict:
    import base64
    import json

    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_jwks_is_well_formed_and_public_only(client):
    body = _jwks(client)
    assert isinstance(body["keys"], list) and body["keys"]
    kids = [k.get("kid") for k in body["keys"]]
    assert all(kids) and len(set(kids)) == len(kids)
    assert {k["alg"] for k in body["keys"]} >= {"RS256", "ES256"}
    for key in body["keys"]:
        assert not PRIVATE_MEMBERS & set(key), f"private material in {key['kid']}"
        assert key["kty"] in ("RSA", "EC") and key.get("use", "sig") == "sig"
        members = ("n", "e") if key["kty"] == "RSA" else ("x", "y")
        for name in members:
            assert B64URL.match(key[name]), f"{name} is not unpadded base64url"


def test_rotation_adds_new_kids_and_keeps_old_ones(app, client):
    """oidcc-server-rotate-keys: a new key with a new kid appears, the old one stays."""
    before = _kids(client)
    with app.app_context():
        new = keys.rotate()
    after = _kids(client)
    assert len(new) == 2 and set(new).isdisjoint(before)
    assert after == before | set(new)


def test_tokens_signed_before_rotation_still_verify(app, client):
    rp = register_client(app)
    old_token = full_login(client, rp)["id_token"]
    old_kid = _header(old_token)["kid"]
    with app.app_context():
        new = keys.rotate()
    assert _verify(client, old_token).claims["aud"] == rp.client_id
    with app.app_context():
        assert keys.verify(old_token).claims["iss"] == "http://127.0.0.1:8000"
    new_token = full_login(client, rp, prompt="login")["id_token"]
    assert _header(new_token)["kid"] in new and _header(new_token)["kid"] != old_kid
    assert _verify(client, new_token).claims["sub"] == _verify(client, old_token).claims["sub"]


def test_cli_rotate_prints_new_keys_and_publishes_them(app, client):
    before = _kids(client)
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    printed = set(re.findall(r"new key (\S+)", result.output))
    assert len(printed) == 2 and printed.isdisjoint(before)
    assert _kids(client) == before | printed
    listed = app.test_cli_runner().invoke(args=["keys", "list"])
    assert listed.exit_code == 0 and all(kid in listed.output for kid in before | printed)


def test_only_new_keys_sign_after_rotation(app):
    with app.app_context():
        new = set(keys.rotate())
        for alg in ("RS256", "ES256"):
            token = keys.sign({"iss": "x"}, alg)
            assert _header(token)["kid"] in new and _header(token)["alg"] == alg


def test_retired_keys_leave_after_the_grace_period(make_app):
    app = make_app(KEY_RETIREMENT_GRACE=3600)
    client = app.test_client()
    before = _kids(client)
    with app.app_context():
        new = set(keys.rotate())
        fresh_token = keys.sign({"iss": "x"}, "RS256")
        # Age the retirement past the grace period instead of waiting for it.
        for row in db.session.scalars(db.select(SigningKey).where(
                SigningKey.retired_at.is_not(None))):
            row.retired_at -= dt.timedelta(hours=2)
        db.session.commit()
        keys.invalidate()
    assert _kids(client) == new, "expired keys must no longer be published"
    result = app.test_cli_runner().invoke(args=["keys", "prune"])
    assert result.exit_code == 0 and "removed 2" in result.output
    with app.app_context():
        assert set(db.session.scalars(db.select(SigningKey.kid))) == new
        assert before.isdisjoint(new)
        assert keys.verify(fresh_token).claims == {"iss": "x"}


def test_prune_keeps_recently_retired_keys(make_app):
    """Prune keeps a key that retired recently: tokens it signed may still be in use."""
    app = make_app(KEY_RETIREMENT_GRACE=3600)
    client = app.test_client()
    with app.app_context():
        old_token = keys.sign({"iss": "x"}, "ES256")
        keys.rotate()
        assert keys.prune() == 0
    assert _verify(client, old_token).claims == {"iss": "x"}
