"""A real eKYC worker process (`flask ekyc worker`, RQ on a real Redis) killed with SIGKILL in
the middle of a case: the case is not lost, another worker resumes it, and exactly one account
is issued. Uses TEST_REDIS_URL, or starts a throw-away `redis-server` when it is installed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis

from ekyc import policy, service
from ekyc.models import Case
from idp import crypto
from idp.extensions import db
from idp.models import Account
from tests.conftest import DATABASE_URL, ISSUER, ROOT, base_config
from tests.ekyc.conftest import selfie_frames

LEASE = 3  # seconds a worker owns a case: short, so that the test does not wait long


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def real_redis_url():
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs a real Redis: set TEST_REDIS_URL or install redis-server")
    port = _free_port()
    folder = tempfile.mkdtemp(prefix="ekyc-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", folder],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


def _worker(conf: dict, log: Path) -> subprocess.Popen:
    """`flask ekyc worker` in its own process, configured like the app under test."""
    names = ("IDP_ENV", "ISSUER", "DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "SECRET_KEY",
             "DATA_ENCRYPTION_KEY", "PAIRWISE_SECRET", "MEDIA_DIR", "REGISTER_URL",
             "EKYC_LEASE_SECONDS", "JOBS_BACKEND", "EKYC_FACE_CHECK", "REGISTER_TIMEOUT",
             "REGISTER_RETRIES")
    env = dict(os.environ, FLASK_APP="wsgi", **{n: str(conf[n]) for n in names})
    flask = Path(sys.executable).with_name("flask")
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([str(flask), "ekyc", "worker"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _case(app, case_id) -> Case:
    with app.app_context():
        case = db.session.get(Case, case_id)
        case.checks  # noqa: B018  (load before the session goes)
        db.session.expunge_all()
        return case


def _wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_with_sigkill_mid_case_loses_nothing(make_app, register_stub, citizens,
                                                              real_redis_url, tmp_path):
    from ekyc.document.synth import make_card

    citizen = citizens[3]
    app = make_app(REDIS_URL=real_redis_url, JOBS_SYNC=False, JOBS_BACKEND="rq",
                   MEDIA_DIR=str(tmp_path / "media"), EKYC_LEASE_SECONDS=LEASE,
                   EKYC_FACE_CHECK="skip-dev", REGISTER_TIMEOUT=30.0, REGISTER_RETRIES=0)
    redis.Redis.from_url(real_redis_url).flushdb()
    stub = register_stub(app)
    # The register answers slowly: the worker is inside the register check when it dies.
    stub.admin("/v1/admin/faults", {"latency_ms": 20_000})
    front, back, _truth = make_card(citizen, seed=5)
    with app.app_context():
        case, _token = service.start_case(channel="web", locale="vi",
                                          consent_version=policy.CONSENT_VERSION)
        service.add_document_image(case, "front", front, "image/jpeg")
        service.add_document_image(case, "back", back, "image/jpeg")
        challenge = service.new_challenge(case)
        service.add_selfie_frames(case, challenge["nonce"], selfie_frames(4),
                                  [i * 400 for i in range(4)])
        service.submit(case)
        case_id = case.id
        db.session.remove()
    conf = base_config(REDIS_URL=real_redis_url, JOBS_BACKEND="rq",
                       MEDIA_DIR=str(tmp_path / "media"), EKYC_LEASE_SECONDS=LEASE,
                       EKYC_FACE_CHECK="skip-dev", REGISTER_URL=stub.url, REGISTER_TIMEOUT=30.0,
                       REGISTER_RETRIES=0)
    assert conf["DATABASE_URL"] == DATABASE_URL and conf["ISSUER"] == ISSUER
    log = tmp_path / "workers.log"

    first = _worker(conf, log)
    try:
        _wait(lambda: stub.calls("/v1/citizens/verify") >= 1, 90, "the worker to ask the register")
        running = _case(app, case_id)
        assert running.state == "processing" and running.lease_owner
        os.killpg(first.pid, signal.SIGKILL)  # kill -9, mid-case
        first.wait(10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)

    dead = _case(app, case_id)
    assert dead.state == "processing"  # not lost, not decided, no account yet
    with app.app_context():
        pid_hash = crypto.keyed_hash("pid", citizen.national_id)
        assert db.session.scalar(db.select(db.func.count()).select_from(Account)
                                 .filter_by(pid_hash=pid_hash)) == 0
        db.session.remove()

    stub.admin("/v1/admin/faults", {"latency_ms": 0})
    time.sleep(LEASE + 0.5)  # the dead worker's lease runs out
    second = _worker(conf, log)
    try:
        done = _wait(lambda: (c := _case(app, case_id)).state in ("approved", "rejected",
                                                                   "needs_review") and c,
                     120, "the second worker to finish the case")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait(10)
    assert done.state == "approved", log.read_text(errors="replace")[-3000:]
    # The document was read once: the resumed worker kept the checks the dead one had finished.
    assert [c.name for c in done.checks].count("document_read") == 1
    with app.app_context():
        accounts = db.session.scalars(db.select(Account).filter_by(pid_hash=pid_hash)).all()
        assert len(accounts) == 1 and accounts[0].status == "pending_activation"
        db.session.remove()
