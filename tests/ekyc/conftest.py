"""Fixtures of the eKYC backend tests: the IdP app (tests/conftest.py's make_app) with a media
folder per test, the population-register stub running for real on a free port, test images,
and a document reader that reads what a synthetic citizen's card says.

The register stub is `register.app:create_app` served by werkzeug in a thread, with its own
SQLite database seeded once per session with the first few synthetic citizens; it trusts the
test IdP's signing keys (injected JWKS) exactly as it trusts the real IdP's. `stop()` and
`start()` take it off the network and back (connection refused in between) on the same port.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from PIL import Image
from werkzeug.serving import make_server

from tests.conftest import ISSUER

SEED_COUNT = 6
ADMIN_TOKEN = "register-admin-token-for-ekyc-tests"
_REGISTER_TMP = Path(tempfile.mkdtemp(prefix="ekyc-register-"))
REGISTER_DB = f"sqlite:///{_REGISTER_TMP / 'register.db'}"


# -- images ----------------------------------------------------------------------------------------

def photo(width: int = 800, height: int = 500, color=(40, 90, 160), fmt: str = "JPEG",
          exif: bytes | None = None, **save) -> bytes:
    """A small synthetic photo with some structure (so JPEG has real entropy-coded data)."""
    image = Image.new("RGB", (width, height), color)
    for x in range(0, width, 40):  # stripes: not a flat image
        image.paste((255 - color[0], color[1], 255 - color[2]), (x, 0, x + 8, height))
    out = io.BytesIO()
    if exif is not None:
        save["exif"] = exif
    image.save(out, fmt, **save)
    return out.getvalue()


def selfie_frames(count: int = 4) -> list[bytes]:
    return [photo(320, 400, color=(120 + i * 10, 100, 90)) for i in range(count)]


# -- a document reader for the citizens of the register -------------------------------------------

@dataclass
class Reading:
    """What `ekyc.document.reader.read_document` returns, for a given citizen (contract shape)."""

    data: dict
    national_id: str | None
    findings: list = field(default_factory=list)
    portrait_jpeg: bytes | None = None

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self.data))


def reading_for(citizen, *, findings=(), national_id: str | None = "same",
                name: str | None = None) -> Reading:
    number = citizen.national_id if national_id == "same" else national_id
    qr = {"national_id": number or "", "old_id": citizen.old_id,
          "full_name": name or citizen.full_name, "birth": citizen.date_of_birth.isoformat(),
          "sex": citizen.sex, "address": citizen.residence,
          "issue_date": citizen.card_issue_date.isoformat(), "extra": []}
    found = [{"code": code, "severity": severity, "detail": ""} for code, severity in findings]
    data = {"qr": {"payload": qr, "decoder": "test"} if number else None,
            "mrz": None, "printed": {}, "quality": {}, "findings": found,
            "national_id": number, "timings_ms": {"total": 1}, "versions": {"reader": "test-1"}}
    return Reading(data, number, found, portrait_jpeg=photo(240, 320, color=(200, 170, 150)))


class FakeReader:
    """Counts its calls; answers with the reading set for the next case."""

    def __init__(self, reading: Reading):
        self.reading = reading
        self.calls = 0

    def __call__(self, front: bytes, back: bytes | None) -> Reading:
        assert front and back  # the pipeline hands over both decrypted sides
        self.calls += 1
        return self.reading


@pytest.fixture(scope="session")
def citizens():
    from register import seed

    return seed.synthetic_citizens(SEED_COUNT)


# -- the IdP app ------------------------------------------------------------------------------------

@pytest.fixture
def ekyc_app(make_app, tmp_path):
    """Factory: an IdP app with a media folder of its own and fast register retries."""

    def factory(**overrides):
        conf = {"MEDIA_DIR": str(tmp_path / "media"), "REGISTER_RETRY_BACKOFF": 0.0,
                "REGISTER_RETRIES": 1, "REGISTER_TIMEOUT": 2.0,
                "REGISTER_URL": "http://127.0.0.1:9", **overrides}
        return make_app(**conf)

    yield factory
    from ekyc import register_client, register_events

    register_client.close_sessions()
    register_events.forget_keys()


# -- the register stub ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def _register_db():
    from joserfc.jwk import ECKey

    from register.app import create_app
    from register.models import db
    from register.seeding import seed_database

    throwaway = ECKey.generate_key("P-256", parameters={"kid": "seed-only", "alg": "ES256"})
    app = create_app(_register_config("http://127.0.0.1:1",
                                      {"keys": [throwaway.as_dict(private=False)]}))
    with app.app_context():
        db.create_all()
        seed_database(SEED_COUNT, 20261123)
        db.session.remove()
        db.engine.dispose()
    return REGISTER_DB


def _register_config(url: str, idp_jwks: dict, **overrides) -> dict:
    conf = {"REGISTER_ENV": "testing", "TESTING": True, "REGISTER_DATABASE_URL": REGISTER_DB,
            "REGISTER_INSTANCE_PATH": str(_REGISTER_TMP / "instance"),
            "REGISTER_BASE_URL": url, "REGISTER_TRUSTED_ISSUER": ISSUER,
            "REGISTER_CLIENT_ID": "dinhdanh-idp", "REGISTER_IDP_JWKS": json.dumps(idp_jwks),
            "REGISTER_LOG_HASH_KEY": "ekyc-tests-log-key", "REGISTER_ADMIN_TOKEN": ADMIN_TOKEN,
            "REGISTER_NOTIFY_URL": "http://127.0.0.1:9/unused",
            "REGISTER_NOTIFY_AUDIENCE": ISSUER, "REGISTER_OUTBOX_THREAD": False,
            "REGISTER_NOTIFY_TIMEOUT": 5.0}
    conf.update(overrides)
    return conf


class RegisterStub:
    """The register stub on 127.0.0.1:<free port>, stoppable and restartable."""

    def __init__(self):
        self.app = None
        self.requests: list[str] = []
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = None

    def _wsgi(self, environ, start_response):
        self.requests.append(environ.get("PATH_INFO", ""))
        return self.app(environ, start_response)

    def calls(self, path: str) -> int:
        """How many requests reached the stub for `path` (whatever it answered)."""
        return self.requests.count(path)

    def configure(self, idp_app, **overrides) -> None:
        from idp import keys
        from register.app import create_app

        with idp_app.app_context():
            jwks = keys.jwks()
        self.app = create_app(_register_config(self.url, jwks, **overrides))
        self._reset()

    def _reset(self) -> None:
        from register import seed
        from register.models import AccessLog, CitizenRecord, FaultState, OutboxMessage, db

        originals = {c.national_id: c.status for c in seed.synthetic_citizens(SEED_COUNT)}
        with self.app.app_context():
            db.session.execute(db.delete(FaultState))
            db.session.execute(db.delete(OutboxMessage))
            db.session.execute(db.delete(AccessLog))
            for record in db.session.scalars(db.select(CitizenRecord)):
                record.status = originals.get(record.national_id, record.status)
                record.status_changed_at = None
            db.session.commit()

    def start(self) -> RegisterStub:
        if self._server is None:
            self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the register off the network: connections are refused until `start()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def admin(self, path: str, body: dict) -> dict:
        response = requests.post(self.url + path, json=body, timeout=5,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 200, response.text
        return response.json()

    def outage(self, on: bool) -> None:
        self.admin("/v1/admin/faults", {"outage": on})

    def set_status(self, national_id: str, status: str) -> dict:
        return self.admin(f"/v1/admin/citizens/{national_id}/status", {"status": status})

    def access_log(self) -> list:
        from register.models import AccessLog, db

        with self.app.app_context():
            rows = db.session.scalars(db.select(AccessLog).order_by(AccessLog.id)).all()
            db.session.remove()
        return rows

    def close(self) -> None:
        self.stop()
        if self.app is not None:
            from register.models import db

            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.fixture
def register_stub(_register_db):
    """Factory: start the register stub for an IdP app (which then points REGISTER_URL at it)."""
    stubs = []

    def factory(idp_app, **overrides) -> RegisterStub:
        stub = RegisterStub()
        idp_app.config["REGISTER_URL"] = stub.url
        stub.configure(idp_app, **overrides)
        stubs.append(stub)
        return stub.start()

    yield factory
    for stub in stubs:
        stub.close()


# -- cases ----------------------------------------------------------------------------------------

def captured_case(app, *, frames: int = 4):
    """A case with consent, both card sides and answered selfie frames (not yet submitted)."""
    from ekyc import policy, service

    with app.app_context():
        case, token = service.start_case(channel="web", locale="en",
                                         consent_version=policy.CONSENT_VERSION)
        service.add_document_image(case, "front", photo(), "image/jpeg")
        service.add_document_image(case, "back", photo(color=(10, 10, 10)), "image/jpeg")
        challenge = service.new_challenge(case)
        service.add_selfie_frames(case, challenge["nonce"], selfie_frames(frames),
                                  [i * 400 for i in range(frames)])
        return case.id, token


def utc(**delta) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(**delta)
