"""Register the demo portals in the IdP's database (`python -m clients setup`).

For each portal in clients.PORTALS: an ES256 key pair kept in <instance>/clients/<name>/key.jwk
(created once, mode 0600), the client created or updated through idp.clients (the same
validation as dynamic registration, then a fixed client id and the portal's sector), and
<instance>/clients/<name>/client.json for the portal to read. Running it again updates the
metadata and keeps the keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from joserfc.jwk import ECKey

from . import PORTALS, Portal

SCOPE = "openid profile email phone address"
ALG = "ES256"  # client assertions and the ID tokens the portals accept


class SetupError(Exception):
    """Metadata the IdP refuses, or an instance folder we cannot write."""


def ensure_key(path: Path) -> ECKey:
    """The portal's private key, generated on first use and never replaced."""
    if path.exists():
        return ECKey.import_key(json.loads(path.read_text()))
    key = ECKey.generate_key("P-256", parameters={"alg": ALG, "use": "sig"}, auto_kid=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(key.as_dict(private=True), out)
    return key


def client_metadata(portal: Portal, base_url: str, key: ECKey) -> dict:
    """What the portal registers (RFC 7591 / OIDC Registration names)."""
    return {
        "client_name": portal.client_name,
        "client_name#vi": portal.client_name,
        "client_name#en": portal.client_name_en,
        "redirect_uris": [f"{base_url}/callback"],
        "post_logout_redirect_uris": [f"{base_url}/"],
        "backchannel_logout_uri": f"{base_url}/backchannel-logout",
        "backchannel_logout_session_required": True,
        "require_pushed_authorization_requests": True,
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": ALG,
        "id_token_signed_response_alg": ALG,
        "jwks": {"keys": [key.as_dict(private=False)]},
        "scope": SCOPE,
    }


def _register(portal: Portal, meta: dict) -> str:
    from idp.clients import (
        ClientMetadataError,
        create_client,
        forget_client,
        get_client,
        validate_metadata,
    )
    from idp.extensions import db

    try:
        # Both demo portals run on one host: without a sector of their own they would share
        # the pairwise subject computed from the redirect host (OIDC Core 8.1).
        meta = {**validate_metadata(meta, allow_http=True), "sector": portal.sector}
    except ClientMetadataError as exc:
        raise SetupError(f"{portal.name}: {exc.error}: {exc.description}") from exc
    client = get_client(portal.client_id)
    if client is None:
        create_client(meta, client_id=portal.client_id)
        return "created"
    client.client_metadata = meta
    db.session.commit()
    forget_client(portal.client_id)
    return "updated"


def setup_portals(*, issuer: str | None = None, instance: str | None = None,
                  host: str = "127.0.0.1", base_urls: dict[str, str] | None = None,
                  app=None) -> Iterator[str]:
    """Register every portal; yields one line per portal for the operator. `app` is the
    IdP app (default: one configured from the environment, as `flask` would make it)."""
    if app is None:
        from idp import create_app

        app = create_app()
    base_urls = base_urls or {}
    with app.app_context():
        issuer = (issuer or app.config["ISSUER"]).rstrip("/")
        root = Path(instance or app.config["INSTANCE_PATH"]) / "clients"
        for portal in PORTALS.values():
            base_url = base_urls.get(portal.name) or f"http://{host}:{portal.port}"
            folder = root / portal.name
            try:
                key = ensure_key(folder / "key.jwk")
                info = {"client_id": portal.client_id, "issuer": issuer, "base_url": base_url,
                        "key_file": str((folder / "key.jwk").resolve()), "name": portal.name}
                (folder / "client.json").write_text(json.dumps(info, indent=2) + "\n")
            except OSError as exc:
                raise SetupError(f"{portal.name}: cannot write {folder}: {exc}") from exc
            done = _register(portal, client_metadata(portal, base_url, key))
            yield f"{portal.name}: {done} {portal.client_id} at {base_url} ({folder})"
