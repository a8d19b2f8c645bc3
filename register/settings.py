"""Every default of the population-register stub in one place, read from the environment.

Each setting has a one-line comment. `load_settings()` returns the dict that `create_app` puts
into `app.config`; `validate()` refuses unsafe production combinations and logs a loud warning
for every development convenience or fault injection that is on. The register is a separate
service: none of these names is shared with the IdP's settings module.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

ENVIRONMENTS = ("development", "production", "testing")


def _BOOL(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


_INT = int
_FLOAT = float
_STR = str

DEFAULTS: list[tuple[str, object, object, str]] = [
    ("REGISTER_ENV", "development", _STR, "development | production | testing"),
    ("REGISTER_DATABASE_URL", "", _STR, "SQLAlchemy URL; SQLite instance/register/register.db"),
    ("REGISTER_INSTANCE_PATH", "", _STR, "folder for the SQLite file and development secrets"),
    ("REGISTER_BASE_URL", "http://127.0.0.1:8100", _STR, "this service's URL = assertion aud"),
    ("REGISTER_TRUSTED_ISSUER", "http://127.0.0.1:8000", _STR, "iss of accepted assertions"),
    ("REGISTER_CLIENT_ID", "dinhdanh-idp", _STR, "sub of accepted assertions (the one caller)"),
    ("REGISTER_IDP_JWKS_URL", "http://127.0.0.1:8000/jwks", _STR, "where the IdP's keys are"),
    ("REGISTER_IDP_JWKS", "", _STR, "JWKS as a JSON string; overrides the URL (tests)"),
    ("REGISTER_JWKS_TIMEOUT", 3.0, _FLOAT, "seconds for one JWKS fetch (connect and read)"),
    ("REGISTER_JWKS_MAX_BYTES", 256 * 1024, _INT, "largest JWKS document read"),
    ("REGISTER_JWKS_CACHE_SECONDS", 600, _INT, "seconds a fetched JWKS is reused"),
    ("REGISTER_JWKS_REFETCH_SECONDS", 30, _INT, "minimum seconds between refetches (unknown kid)"),
    ("REGISTER_ASSERTION_MAX_LIFETIME", 300, _INT, "largest exp - iat of a client assertion"),
    ("REGISTER_JWT_LEEWAY", 30, _INT, "clock skew tolerated on exp/iat/nbf, in seconds"),
    ("REGISTER_LATENCY_MS", 0, _INT, "fault: delay added to every citizen API call"),
    ("REGISTER_ERROR_RATE", 0.0, _FLOAT, "fault: share of citizen API calls answered 503"),
    ("REGISTER_OUTAGE", False, _BOOL, "fault: every citizen API call and /healthz answer 503"),
    ("REGISTER_ADMIN_TOKEN", "", _STR, "bearer token of /v1/admin/*; empty = admin API off"),
    ("REGISTER_LOG_HASH_KEY", None, _STR, "HMAC key for ID numbers in the access log"),
    ("REGISTER_NOTIFY_URL", "http://127.0.0.1:8000/ekyc/register-events", _STR,
     "where status-change SETs are POSTed"),
    ("REGISTER_NOTIFY_AUDIENCE", "", _STR, "aud of the SETs; empty = REGISTER_TRUSTED_ISSUER"),
    ("REGISTER_NOTIFY_TIMEOUT", 5.0, _FLOAT, "seconds for one delivery attempt"),
    ("REGISTER_NOTIFY_BACKOFF_BASE", 2, _INT, "seconds before the first retry; doubles each time"),
    ("REGISTER_NOTIFY_BACKOFF_MAX", 3600, _INT, "longest wait between two delivery attempts"),
    ("REGISTER_OUTBOX_THREAD", None, _BOOL, "deliver in a background thread (off in testing)"),
    ("REGISTER_OUTBOX_INTERVAL", 2.0, _FLOAT, "seconds between two outbox polls of the thread"),
    ("REGISTER_SEED_COUNT", 10_000, _INT, "citizens created by `python -m register seed`"),
    ("REGISTER_SEED", 20261123, _INT, "random seed of the synthetic population"),
    ("MAX_CONTENT_LENGTH", 64 * 1024, _INT, "largest request body accepted, in bytes"),
]


class ConfigError(RuntimeError):
    """The configuration is unsafe or inconsistent; the app refuses to start."""


def _generated_secret(instance: Path, name: str) -> str:
    """A development secret kept in the instance folder so restarts keep the same hashes."""
    path = instance / f"dev-{name.lower()}"
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    instance.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    path.chmod(0o600)
    return value


def load_settings(overrides: dict | None = None, environ=None) -> dict:
    """Read every setting from `overrides`, then the environment, then the default."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    conf: dict = {}
    for name, default, parse, _ in DEFAULTS:
        if name in overrides:
            conf[name] = overrides.pop(name)
        elif name in environ:
            conf[name] = parse(environ[name])
        else:
            conf[name] = default
    conf.update(overrides)  # Flask keys such as TESTING pass through untouched
    env = conf["REGISTER_ENV"]
    if env not in ENVIRONMENTS:
        raise ConfigError(f"REGISTER_ENV must be one of {ENVIRONMENTS}, not {env!r}")
    root = Path(__file__).resolve().parent.parent
    instance = Path(conf["REGISTER_INSTANCE_PATH"] or root / "instance" / "register")
    conf["REGISTER_INSTANCE_PATH"] = str(instance)
    conf["GENERATED_SECRETS"] = []
    if not conf["REGISTER_LOG_HASH_KEY"]:
        if env == "production":
            raise ConfigError("REGISTER_LOG_HASH_KEY must be set in production")
        conf["REGISTER_LOG_HASH_KEY"] = _generated_secret(instance, "REGISTER_LOG_HASH_KEY")
        conf["GENERATED_SECRETS"].append("REGISTER_LOG_HASH_KEY")
    if not conf["REGISTER_DATABASE_URL"]:
        instance.mkdir(parents=True, exist_ok=True)
        conf["REGISTER_DATABASE_URL"] = f"sqlite:///{instance / 'register.db'}"
    if conf["REGISTER_OUTBOX_THREAD"] is None:
        conf["REGISTER_OUTBOX_THREAD"] = env != "testing" and not conf.get("TESTING")
    for name in ("REGISTER_BASE_URL", "REGISTER_TRUSTED_ISSUER"):
        conf[name] = conf[name].rstrip("/")
    if not conf["REGISTER_NOTIFY_AUDIENCE"]:
        conf["REGISTER_NOTIFY_AUDIENCE"] = conf["REGISTER_TRUSTED_ISSUER"]
    return conf


def validate(conf: dict) -> None:
    """Refuse unsafe production settings and bad values; warn about faults and dev secrets."""
    production = conf["REGISTER_ENV"] == "production"
    if production:
        for name in ("REGISTER_BASE_URL", "REGISTER_TRUSTED_ISSUER", "REGISTER_IDP_JWKS_URL",
                     "REGISTER_NOTIFY_URL"):
            if not conf[name].startswith("https://"):
                raise ConfigError(f"production requires an https:// {name}")
        if conf["REGISTER_DATABASE_URL"].startswith("sqlite"):
            raise ConfigError("production requires PostgreSQL (REGISTER_DATABASE_URL)")
        if conf["REGISTER_IDP_JWKS"]:
            raise ConfigError("production refuses an inline REGISTER_IDP_JWKS")
    if conf["REGISTER_ADMIN_TOKEN"] and len(conf["REGISTER_ADMIN_TOKEN"]) < 16:
        raise ConfigError("REGISTER_ADMIN_TOKEN must be at least 16 characters")
    if not 0.0 <= conf["REGISTER_ERROR_RATE"] <= 1.0:
        raise ConfigError("REGISTER_ERROR_RATE must be between 0 and 1")
    if not 0 <= conf["REGISTER_LATENCY_MS"] <= 60_000:
        raise ConfigError("REGISTER_LATENCY_MS must be between 0 and 60000")
    if not 0 < conf["REGISTER_ASSERTION_MAX_LIFETIME"] <= 3600:
        raise ConfigError("REGISTER_ASSERTION_MAX_LIFETIME must be between 1 and 3600 seconds")
    if conf["REGISTER_NOTIFY_BACKOFF_BASE"] <= 0 or conf["REGISTER_NOTIFY_BACKOFF_MAX"] <= 0:
        raise ConfigError("the outbox back-off settings must be positive")
    if conf["REGISTER_IDP_JWKS"]:
        try:
            keys = json.loads(conf["REGISTER_IDP_JWKS"]).get("keys")
        except (ValueError, AttributeError) as exc:
            raise ConfigError("REGISTER_IDP_JWKS is not a JSON Web Key Set") from exc
        if not isinstance(keys, list):
            raise ConfigError("REGISTER_IDP_JWKS is not a JSON Web Key Set")
        log.warning("UNSAFE REGISTER_IDP_JWKS is set inline: the IdP's key URL is not used")
    if conf["REGISTER_OUTAGE"] or conf["REGISTER_ERROR_RATE"] or conf["REGISTER_LATENCY_MS"]:
        log.warning("Fault injection is on: outage=%s error_rate=%s latency_ms=%s",
                    conf["REGISTER_OUTAGE"], conf["REGISTER_ERROR_RATE"],
                    conf["REGISTER_LATENCY_MS"])
    for name in conf.get("GENERATED_SECRETS", []):
        log.warning("UNSAFE %s was generated for development; set it explicitly elsewhere", name)
