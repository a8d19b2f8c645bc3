"""Every setting of a portal, with its default, read once when the app starts.

Environment: PORTAL_INSTANCE (folder holding clients/<name>/client.json and key.jwk written by
`python -m clients setup`), PORTAL_ISSUER and PORTAL_BASE_URL (override client.json),
REDIS_URL (sessions in Redis instead of SQLite), PORTAL_ENV (development | production).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from joserfc.jwk import ECKey

ROOT = Path(__file__).resolve().parents[2]

DEFAULTS = {
    "HTTP_TIMEOUT": 5,          # seconds for every call to the IdP (discovery, PAR, token, ...)
    "JWKS_CACHE_SECONDS": 300,  # IdP keys re-read after this long, or at once on an unknown kid
    "LEEWAY": 30,               # clock skew tolerated on exp / iat / auth_time, in seconds
    "MAX_TOKEN_AGE": 300,       # an ID or logout token issued longer ago than this is refused
    "LOGIN_TTL": 600,           # seconds a started sign-in (state, nonce, verifier) waits
    "SESSION_TTL": 8 * 3600,    # seconds a portal session lives without being used
    "MAX_PENDING_LOGINS": 5,    # sign-ins started in parallel per browser (several tabs)
    "ID_TOKEN_ALG": "ES256",    # the one algorithm registered for our ID tokens (clients.setup)
    "SCOPE": "openid profile email phone address",
}
ENVIRONMENTS = ("development", "production")


class ConfigError(Exception):
    pass


def load(portal, overrides: dict | None = None) -> dict:
    """Settings for one portal: DEFAULTS, client.json, the environment, then `overrides`."""
    overrides = dict(overrides or {})
    conf = dict(DEFAULTS)
    instance = Path(overrides.pop("PORTAL_INSTANCE", None)
                    or os.environ.get("PORTAL_INSTANCE") or ROOT / "instance")
    folder = instance / "clients" / portal.name
    try:
        info = json.loads((folder / "client.json").read_text())
        key = ECKey.import_key(json.loads((folder / info["key_file"]).read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{folder}: no usable client.json / key.jwk; run "
                          f"`uv run python -m clients setup` first ({exc})") from exc
    conf.update({
        "CLIENT_ID": info["client_id"],
        "ISSUER": os.environ.get("PORTAL_ISSUER") or info["issuer"],
        "BASE_URL": os.environ.get("PORTAL_BASE_URL") or info["base_url"],
        "CLIENT_KEY": key,
        "SESSION_DB": str(folder / "sessions.db"),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "PORTAL_ENV": os.environ.get("PORTAL_ENV", "development"),
    })
    conf.update(overrides)
    conf["ISSUER"] = conf["ISSUER"].rstrip("/")
    conf["BASE_URL"] = conf["BASE_URL"].rstrip("/")
    _validate(conf)
    return conf


def _validate(conf: dict) -> None:
    if conf["PORTAL_ENV"] not in ENVIRONMENTS:
        raise ConfigError(f"PORTAL_ENV must be one of {ENVIRONMENTS}")
    development = conf["PORTAL_ENV"] == "development"
    for name in ("ISSUER", "BASE_URL"):
        scheme = urlsplit(conf[name]).scheme
        if scheme != "https" and not (development and scheme == "http"):
            raise ConfigError(f"{name} must be an https URL outside development")
    if development:
        logging.getLogger(__name__).warning(
            "PORTAL_ENV=development: http allowed and cookies are not marked Secure")
