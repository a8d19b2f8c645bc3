"""Every default of the IdP in one place, read from the environment and validated at start.

Each setting has a one-line comment saying what it is for. `load_settings()` returns a dict that
`create_app` puts into `app.config`; `validate()` refuses unsafe combinations in production and
logs a loud warning for every development convenience that is switched on.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

ENVIRONMENTS = ("development", "production", "testing")

# (name, default, parser, comment). Parsers turn environment strings into values.
_BOOL = lambda v: str(v).strip().lower() in ("1", "true", "yes", "on")
_INT = int
_FLOAT = float
_STR = str
_LIST = lambda v: [x for x in str(v).replace(",", " ").split() if x]

DEFAULTS: list[tuple[str, object, object, str]] = [
    ("IDP_ENV", "development", _STR, "development | production | testing"),
    ("ISSUER", "http://127.0.0.1:8000", _STR, "issuer URL; every endpoint hangs below it"),
    ("SECRET_KEY", None, _STR, "Flask session/CSRF key; generated in development"),
    ("DATA_ENCRYPTION_KEY", None, _STR, "Fernet key for signing keys and ID numbers at rest"),
    ("PAIRWISE_SECRET", None, _STR, "HMAC key for pairwise subjects and ID-number lookup hashes"),
    ("DATABASE_URL", None, _STR, "SQLAlchemy URL; SQLite in the instance folder by default"),
    ("REDIS_URL", "", _STR, "redis:// URL; empty = in-process stand-in (fakeredis)"),
    ("REGISTRATION_OPEN", None, _BOOL, "dynamic registration without initial access token"),
    ("REGISTRATION_INITIAL_ACCESS_TOKEN", "", _STR, "bearer token required to register when closed"),
    ("ALLOW_LOOPBACK_FETCH", None, _BOOL, "let the outbound fetcher reach private/loopback hosts"),
    ("ALLOW_HTTP_REDIRECT_URIS", None, _BOOL, "accept http:// redirect URIs for web clients"),
    ("SEED_DEMO", None, _BOOL, "create the demo citizen, operator and portals on `flask seed`"),
    ("SECURE_COOKIES", None, _BOOL, "mark cookies Secure (always outside development)"),
    ("CLIENT_CACHE_SECONDS", 10, _INT, "seconds a process reuses client metadata on token paths"),
    ("AUTH_CODE_TTL", 60, _INT, "seconds an authorization code lives"),
    ("ACCESS_TOKEN_TTL", 600, _INT, "seconds an access token lives"),
    ("ID_TOKEN_TTL", 600, _INT, "seconds an ID token lives"),
    ("REFRESH_TOKEN_TTL", 14 * 24 * 3600, _INT, "seconds a refresh token family lives"),
    ("PAR_TTL", 60, _INT, "seconds a pushed authorization request URI lives"),
    ("INTERACTION_TTL", 900, _INT, "seconds a user has to finish login/consent"),
    ("SESSION_IDLE_TTL", 30 * 60, _INT, "SSO session idle timeout in seconds"),
    ("SESSION_ABSOLUTE_TTL", 12 * 3600, _INT, "SSO session absolute lifetime in seconds"),
    ("CLIENT_ASSERTION_MAX_AGE", 300, _INT, "max lifetime of a private_key_jwt assertion"),
    ("JWT_LEEWAY", 30, _INT, "clock skew tolerated on every JWT we verify, in seconds"),
    ("KEY_RETIREMENT_GRACE", 24 * 3600, _INT, "seconds a rotated-out key stays published"),
    ("REAUTH_MAX_AGE", 300, _INT, "seconds a login counts as recent for changing sign-in methods"),
    ("LOGIN_MAX_FAILURES", 5, _INT, "failed passwords before an account is locked"),
    ("LOGIN_LOCKOUT_SECONDS", 15 * 60, _INT, "how long a temporary lockout lasts"),
    ("LOGIN_IP_MAX_FAILURES", 30, _INT, "failed logins per IP per window before throttling"),
    ("LOGIN_IP_WINDOW", 15 * 60, _INT, "window for the per-IP failure counter, in seconds"),
    ("REGISTRATION_PER_IP", 20, _INT, "dynamic client registrations one IP may make per window"),
    ("REGISTRATION_WINDOW", 3600, _INT, "seconds of the per-IP client registration window"),
    ("TRUSTED_PROXY_HOPS", 0, _INT,
     "reverse proxies in front whose X-Forwarded-For/-Proto we believe; 0 = none (direct)"),
    ("FETCH_TIMEOUT", 5, _INT, "seconds for any outbound fetch (connect + read)"),
    ("FETCH_MAX_BYTES", 256 * 1024, _INT, "largest outbound response body we read"),
    ("MAX_CONTENT_LENGTH", 1024 * 1024, _INT, "largest request body accepted, in bytes"),
    ("MAX_PARAM_LENGTH", 4096, _INT, "longest single authorization/token parameter"),
    ("JOBS_BACKEND", "", _STR, "rq | thread; empty = rq with REDIS_URL, else thread"),
    ("BACKCHANNEL_LOGOUT_RETRIES", 3, _INT, "delivery attempts for a back-channel logout token"),
    ("WEBAUTHN_RP_ID", "", _STR, "WebAuthn relying party id; host of ISSUER when empty"),
    ("LOG_FORMAT", "json", _STR, "json (one object per line, with the request id) | text"),
    ("METRICS_TOKEN", "", _STR, "bearer token for /metrics; production serves none without it"),
    ("BABEL_DEFAULT_LOCALE", "vi", _STR, "language of every page unless the user picks another"),
    ("INSTANCE_PATH", "", _STR, "folder for the SQLite file and development secrets"),
    # eKYC onboarding (ekyc/): the population register, media, uploads, the case pipeline.
    ("REGISTER_URL", "http://127.0.0.1:8100", _STR, "population register base URL (internal)"),
    ("REGISTER_CLIENT_ID", "dinhdanh-idp", _STR, "our client id at the register (assertion sub)"),
    ("REGISTER_ASSERTION_ALG", "ES256", _STR, "alg of the JWT client assertion to the register"),
    ("REGISTER_TIMEOUT", 3.0, _FLOAT, "seconds per register request (connect, and each read)"),
    ("REGISTER_RETRIES", 2, _INT, "extra attempts of one register call before giving up"),
    ("REGISTER_RETRY_BACKOFF", 0.2, _FLOAT, "first in-call retry delay in seconds (doubles)"),
    ("REGISTER_MAX_BYTES", 2 * 1024 * 1024, _INT, "largest register response body we read"),
    ("REGISTER_BREAKER_FAILURES", 5, _INT, "consecutive failed register calls opening the breaker"),
    ("REGISTER_BREAKER_COOLDOWN", 30, _INT, "seconds the breaker stays open before one probe"),
    ("REGISTER_JWKS", "", _STR, "register's JWKS as JSON (tests); empty = REGISTER_URL/jwks.json"),
    ("REGISTER_EVENT_MAX_AGE", 300, _INT, "oldest register notification (SET iat) accepted"),
    ("EKYC_QUEUE", "ekyc", _STR, "RQ queue of the eKYC case pipeline"),
    # skip-dev runs the biometric checks but never lets them stop a case: development only.
    ("EKYC_FACE_CHECK", None, _STR, "required | skip-dev; required in production"),
    ("EKYC_DUPLICATE_THRESHOLD", 0.0, _FLOAT,
     "face distance below which an enrolled face is a suspected duplicate; 0 = the strict one"),
    ("EKYC_LEASE_SECONDS", 300, _INT, "seconds a worker owns a case before another may resume"),
    ("EKYC_MAX_RUNS", 5, _INT, "processing runs of one case before it goes to an operator"),
    ("EKYC_RETRY_BASE", 30, _INT, "first delay, s, before asking an unavailable register again"),
    ("EKYC_RETRY_MAX", 3600, _INT, "longest delay, s, between register retries of a case"),
    ("EKYC_SWEEP_INTERVAL", 60, _INT, "seconds between sweeps that re-queue stuck cases"),
    ("EKYC_CASE_TTL", 24 * 3600, _INT, "seconds a citizen has to finish capturing a case"),
    ("EKYC_CASES_PER_IP", 30, _INT, "new onboarding cases one IP address may open per window"),
    ("EKYC_CASES_WINDOW", 3600, _INT, "seconds of the per-IP window for new onboarding cases"),
    ("MEDIA_DIR", "", _STR, "encrypted media store folder; instance/media when empty"),
    ("MEDIA_RETENTION_DAYS", 30, _INT, "days document and face images are kept after decision"),
    ("UPLOAD_MAX_BYTES", 8 * 1024 * 1024, _INT, "largest accepted image upload, in bytes"),
    ("UPLOAD_MAX_PIXELS", 40_000_000, _INT, "largest accepted image, in pixels (bomb guard)"),
    ("UPLOAD_MIN_SIDE", 320, _INT, "smallest accepted image side, in pixels"),
    ("SELFIE_MIN_FRAMES", 3, _INT, "fewest selfie frames accepted for one challenge"),
    ("SELFIE_MAX_FRAMES", 13, _INT, "most selfie frames accepted for one challenge"),
    ("CHALLENGE_TTL", 120, _INT, "seconds a liveness challenge nonce stays valid"),
    # The operator console (/ops): its own session on top of the staff member's SSO session.
    ("OPS_IDLE_TIMEOUT", 15 * 60, _INT, "console session idle timeout, s; also the sign-in max_age"),
    ("OPS_ABSOLUTE_TIMEOUT", 8 * 3600, _INT, "console session absolute lifetime, s"),
    # The audit log (idp/audit.py): appends to one chain are serialised, chains run in parallel.
    ("AUDIT_CHAINS", 16, _INT, "independent audit hash chains an append spreads over (>= 1)"),
]

# Development conveniences: on by default in development/testing, refused in production.
DEV_ONLY = ("REGISTRATION_OPEN", "ALLOW_LOOPBACK_FETCH", "ALLOW_HTTP_REDIRECT_URIS", "SEED_DEMO")
GENERATED = ("SECRET_KEY", "DATA_ENCRYPTION_KEY", "PAIRWISE_SECRET")

SUPPORTED_LOCALES = ("vi", "en")
FACE_CHECK_MODES = ("required", "skip-dev")
SIGNING_ALGS = ("RS256", "ES256")


class ConfigError(RuntimeError):
    """The configuration is unsafe or inconsistent; the app refuses to start."""


def _generated_secret(instance: Path, name: str) -> str:
    """A development secret kept in the instance folder so restarts keep sessions and keys."""
    path = instance / f"dev-{name.lower()}"
    if path.exists():
        return path.read_text().strip()
    if name == "DATA_ENCRYPTION_KEY":
        from cryptography.fernet import Fernet

        value = Fernet.generate_key().decode()
    else:
        value = secrets.token_urlsafe(48)
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
    conf.update(overrides)  # Flask/extension keys such as TESTING pass through untouched
    env = conf["IDP_ENV"]
    if env not in ENVIRONMENTS:
        raise ConfigError(f"IDP_ENV must be one of {ENVIRONMENTS}, not {env!r}")
    production = env == "production"
    for name in DEV_ONLY:
        if conf[name] is None:
            conf[name] = not production
    if conf["SECURE_COOKIES"] is None:
        conf["SECURE_COOKIES"] = production
    if conf["EKYC_FACE_CHECK"] is None:  # approving without a face check is for development
        conf["EKYC_FACE_CHECK"] = "required" if production else "skip-dev"
    instance = Path(conf["INSTANCE_PATH"] or Path(__file__).resolve().parent.parent / "instance")
    conf["INSTANCE_PATH"] = str(instance)
    conf["GENERATED_SECRETS"] = []
    for name in GENERATED:
        if not conf[name]:
            if production:
                raise ConfigError(f"{name} must be set in production")
            conf[name] = _generated_secret(instance, name)
            conf["GENERATED_SECRETS"].append(name)
    if not conf["DATABASE_URL"]:
        conf["DATABASE_URL"] = f"sqlite:///{instance / 'idp.db'}"
    conf["ISSUER"] = conf["ISSUER"].rstrip("/")
    conf["REGISTER_URL"] = conf["REGISTER_URL"].rstrip("/")
    if not conf["MEDIA_DIR"]:
        conf["MEDIA_DIR"] = str(instance / "media")
    return conf


def validate(conf: dict) -> None:
    """Refuse unsafe production settings; warn loudly about development conveniences."""
    production = conf["IDP_ENV"] == "production"
    issuer = conf["ISSUER"]
    if production:
        enabled = [name for name in DEV_ONLY if conf[name]]
        if enabled:
            raise ConfigError(f"production refuses development settings: {', '.join(enabled)}")
        if not issuer.startswith("https://"):
            raise ConfigError("production requires an https:// ISSUER")
        if conf["DATABASE_URL"].startswith("sqlite"):
            raise ConfigError("production requires PostgreSQL (DATABASE_URL)")
        if not conf["REDIS_URL"]:
            raise ConfigError("production requires a real Redis (REDIS_URL)")
        if not conf["REGISTRATION_INITIAL_ACCESS_TOKEN"]:
            raise ConfigError("production requires REGISTRATION_INITIAL_ACCESS_TOKEN")
        if not conf["SECURE_COOKIES"]:
            raise ConfigError("production requires SECURE_COOKIES")
    if not issuer.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ConfigError("ISSUER must be https:// (or loopback http:// in development)")
    for name in ("AUTH_CODE_TTL", "ACCESS_TOKEN_TTL", "ID_TOKEN_TTL", "SESSION_IDLE_TTL",
                 "OPS_IDLE_TIMEOUT", "OPS_ABSOLUTE_TIMEOUT"):
        if conf[name] <= 0:
            raise ConfigError(f"{name} must be positive")
    if conf["AUTH_CODE_TTL"] > 600:
        raise ConfigError("AUTH_CODE_TTL above 600 s defeats single use (RFC 6749 4.1.2)")
    if conf["AUDIT_CHAINS"] < 1:
        raise ConfigError("AUDIT_CHAINS must be at least 1")
    if conf["TRUSTED_PROXY_HOPS"] < 0:
        raise ConfigError("TRUSTED_PROXY_HOPS must be 0 (no proxy) or the number of proxies")
    for name in ("REGISTRATION_PER_IP", "REGISTRATION_WINDOW"):
        if conf[name] <= 0:
            raise ConfigError(f"{name} must be positive")
    if conf["BABEL_DEFAULT_LOCALE"] not in SUPPORTED_LOCALES:
        raise ConfigError(f"BABEL_DEFAULT_LOCALE must be one of {SUPPORTED_LOCALES}")
    _validate_ekyc(conf, production)
    for name in DEV_ONLY:
        if conf[name]:
            log.warning("UNSAFE development setting %s is on (refused in production)", name)
    for name in conf.get("GENERATED_SECRETS", []):
        log.warning("UNSAFE %s was generated for development; set it explicitly elsewhere", name)
    if not conf["REDIS_URL"]:
        log.warning("Using the in-process Redis stand-in: one process only, nothing survives restart")


def _validate_ekyc(conf: dict, production: bool) -> None:
    """eKYC settings: no approval without face evidence in production; sane limits."""
    mode = conf["EKYC_FACE_CHECK"]
    if mode not in FACE_CHECK_MODES:
        raise ConfigError(f"EKYC_FACE_CHECK must be one of {FACE_CHECK_MODES}, not {mode!r}")
    if mode == "skip-dev":
        if production:
            raise ConfigError("production refuses development settings: EKYC_FACE_CHECK=skip-dev")
        log.warning("UNSAFE development setting EKYC_FACE_CHECK=skip-dev is on: the face, "
                    "liveness and duplicate checks run but never stop an onboarding case "
                    "(refused in production)")
    if not conf["REGISTER_URL"].startswith(("https://", "http://")):
        raise ConfigError("REGISTER_URL must be an http(s):// URL")
    if production and not conf["REGISTER_URL"].startswith("https://"):
        log.warning("REGISTER_URL is plain http: only acceptable on a private, trusted network")
    if conf["REGISTER_ASSERTION_ALG"] not in SIGNING_ALGS:
        raise ConfigError(f"REGISTER_ASSERTION_ALG must be one of {SIGNING_ALGS}")
    for name in ("UPLOAD_MAX_BYTES", "UPLOAD_MAX_PIXELS", "SELFIE_MAX_FRAMES", "CHALLENGE_TTL",
                 "EKYC_LEASE_SECONDS", "MEDIA_RETENTION_DAYS", "REGISTER_BREAKER_FAILURES"):
        if conf[name] <= 0:
            raise ConfigError(f"{name} must be positive")
    if not 0 < conf["SELFIE_MIN_FRAMES"] <= conf["SELFIE_MAX_FRAMES"]:
        raise ConfigError("SELFIE_MIN_FRAMES must be between 1 and SELFIE_MAX_FRAMES")
