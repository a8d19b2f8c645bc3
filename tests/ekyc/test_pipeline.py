"""The case pipeline (ekyc/pipeline.py) with the register stub running for real: decisions,
register outages and retries, and workers that die in the middle of a case."""

from __future__ import annotations

import json

import pytest

from ekyc import cases, pipeline, policy, service, tasks
from ekyc.models import Case, CaseCheck
from idp import crypto
from idp.extensions import db
from idp.models import Account
from register.seed import faces_dir, identity_images, portrait_identity
from tests.ekyc.conftest import FakeReader, captured_case, reading_for, utc


def _submit(app, reader, case_id, token) -> Case:
    app.extensions["ekyc.reader"] = reader
    with app.app_context():
        case = service.open_case(case_id, token)
        service.submit(case)
        db.session.remove()
    return _case(app, case_id)


def _case(app, case_id) -> Case:
    with app.app_context():
        case = db.session.get(Case, case_id)
        case.checks, case.events  # noqa: B018  (load before the session goes)
        db.session.expunge_all()
        return case


def _accounts(app, national_id: str) -> list[Account]:
    with app.app_context():
        rows = db.session.scalars(db.select(Account).filter_by(
            pid_hash=crypto.keyed_hash("pid", national_id))).all()
        db.session.expunge_all()
        return rows


def _final(case) -> dict[str, str]:
    return {name: r.outcome for name, r in pipeline.final_results(case).items()}


def _verify_calls(stub) -> int:
    return stub.calls("/v1/citizens/verify")


def test_a_genuine_card_is_approved_and_issues_a_pending_account(ekyc_app, register_stub,
                                                                 citizens):
    app = ekyc_app()
    register_stub(app)
    citizen = citizens[1]
    reader = FakeReader(reading_for(citizen))
    case = _submit(app, reader, *captured_case(app))
    assert case.state == "approved", case.reason_codes
    assert [c.name for c in case.checks] == list(policy.CHECK_NAMES)  # the policy's order
    assert [c.position for c in case.checks] == list(range(len(policy.CHECKS)))
    # The fake reading's portrait has no face: under skip-dev the register-portrait comparison
    # is recorded but does not stop the case (without the faces data: nothing to compare).
    assert _final(case) == {"upload_quality": "pass", "document_read": "pass",
                            "document_consistency": "pass", "register_lookup": "pass",
                            "register_fields_match": "pass", "register_portrait": "skipped",
                            "face_match": "skipped", "liveness": "skipped",
                            "duplicate": "skipped"}
    assert all(c.version for c in case.checks)
    assert next(c for c in case.checks if c.name == "document_read").version == "test-1"
    match = next(c for c in case.checks if c.name == "register_fields_match")
    assert (match.score, match.threshold) == (1.0, 1.0)
    details = json.dumps([c.detail for c in case.checks], ensure_ascii=False)
    assert citizen.national_id not in details and citizen.full_name not in details
    assert cases.history(case) == [("created", "capturing"), ("capturing", "submitted"),
                                   ("submitted", "processing"), ("processing", "approved")]
    [account] = _accounts(app, citizen.national_id)
    assert account.id == case.account_id and account.onboarded_case_id == case.id
    assert account.status == "pending_activation" and account.level == 1
    assert account.password_hash is None
    assert account.full_name == citizen.full_name
    assert account.family_name == citizen.family_name
    assert account.birthdate == citizen.date_of_birth
    assert account.gender == {"M": "male", "F": "female"}[citizen.sex]
    assert account.address["formatted"] == citizen.residence
    with app.app_context():
        assert crypto.decrypt(account.pid_encrypted) == citizen.national_id
        assert service.status_view(db.session.get(Case, case.id), "en")["next"] == "activate"
    assert reader.calls == 1


def test_register_down_the_case_waits_then_is_decided_when_it_is_back(ekyc_app, register_stub,
                                                                      citizens):
    app = ekyc_app()
    stub = register_stub(app)
    reader = FakeReader(reading_for(citizens[2]))
    stub.stop()
    case = _submit(app, reader, *captured_case(app))
    assert case.state == "waiting_register"
    assert _final(case) == {"upload_quality": "pass", "document_read": "pass",
                            "document_consistency": "pass"}
    pending = [c for c in case.checks if c.name == "register_lookup"]
    assert [c.outcome for c in pending] == ["pending"]
    assert pending[0].reason_code == "register_unavailable"
    assert case.attempts == 1 and case.next_attempt_at is not None and case.lease_owner is None
    assert _accounts(app, citizens[2].national_id) == []
    with app.app_context():
        view = service.status_view(db.session.get(Case, case.id), "en")
        assert view["next"] == "wait" and view["reasons"][0]["code"] == "register_unavailable"
        assert tasks.run_due(now=utc()) == 0  # not due yet: nothing runs early
    stub.start()
    with app.app_context():
        assert tasks.run_due(now=case.next_attempt_at) == 1
    case = _case(app, case.id)
    assert case.state == "approved"
    assert cases.history(case)[-3:] == [("processing", "waiting_register"),
                                         ("waiting_register", "processing"),
                                         ("processing", "approved")]
    assert len(_accounts(app, citizens[2].national_id)) == 1
    assert reader.calls == 1  # the document was not read again


def test_register_outage_and_open_breaker_never_approve(ekyc_app, register_stub, citizens):
    app = ekyc_app(REGISTER_BREAKER_FAILURES=2, REGISTER_RETRIES=0)
    stub = register_stub(app)
    stub.outage(True)  # the register answers 503 to everything
    reader = FakeReader(reading_for(citizens[3]))
    first = _submit(app, reader, *captured_case(app))
    second = _submit(app, reader, *captured_case(app))
    third = _submit(app, reader, *captured_case(app))  # breaker open: not even asked
    assert [c.state for c in (first, second, third)] == ["waiting_register"] * 3
    assert _verify_calls(stub) == 2
    assert _accounts(app, citizens[3].national_id) == []
    # Backing off: each retry of a case waits longer.
    with app.app_context():
        for _ in range(2):
            tasks.run_due(now=utc(days=1))
        retried = db.session.get(Case, first.id)
        assert retried.state == "waiting_register" and retried.attempts == 3
        assert retried.next_attempt_at > utc(seconds=app.config["EKYC_RETRY_BASE"])


def test_a_forged_card_is_rejected_before_the_register_is_asked(ekyc_app, register_stub,
                                                               citizens):
    app = ekyc_app()
    stub = register_stub(app)
    forged = reading_for(citizens[1], findings=[("qr_mrz_id_mismatch", "reject"),
                                                ("id_unknown_province", "warn")])
    case = _submit(app, FakeReader(forged), *captured_case(app))
    assert case.state == "rejected" and case.reason_codes == ["document_inconsistent"]
    assert list(_final(case)) == ["upload_quality", "document_read", "document_consistency"]
    detail = next(c for c in case.checks if c.name == "document_consistency").detail
    assert {"code": "qr_mrz_id_mismatch", "severity": "reject"} in detail["findings"]
    assert _verify_calls(stub) == 0
    assert _accounts(app, citizens[1].national_id) == []
    with app.app_context():
        view = service.status_view(db.session.get(Case, case.id), "en")
    assert view["next"] == "contact" and "does not agree" in view["reasons"][0]["message"]


@pytest.mark.parametrize("findings, national_id, reason, next_step", [
    ([], None, "document_unreadable", "retry"),
    ([("blur", "reject")], None, "image_quality", "retry"),
    ([("card_expired", "reject")], "same", "document_expired", "contact"),
    ([("printed_name_mismatch", "review")], "same", "document_needs_review", "wait"),
])
def test_document_outcomes(ekyc_app, register_stub, citizens, findings, national_id, reason,
                           next_step):
    app = ekyc_app()
    register_stub(app)
    reading = reading_for(citizens[1], findings=findings, national_id=national_id)
    case = _submit(app, FakeReader(reading), *captured_case(app))
    assert reason in case.reason_codes
    with app.app_context():
        assert service.status_view(db.session.get(Case, case.id), "en")["next"] == next_step


def test_register_mismatch_and_death_are_rejected(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    stub = register_stub(app)
    wrong_name = reading_for(citizens[1], name="Trần Thị Khác")
    case = _submit(app, FakeReader(wrong_name), *captured_case(app))
    assert case.state == "rejected" and case.reason_codes == ["register_mismatch"]
    stub.set_status(citizens[4].national_id, "deceased")
    case = _submit(app, FakeReader(reading_for(citizens[4])), *captured_case(app))
    assert case.state == "rejected" and case.reason_codes == ["register_deceased"]
    unknown = reading_for(citizens[1], national_id="001099999999")
    case = _submit(app, FakeReader(unknown), *captured_case(app))
    assert case.reason_codes == ["register_not_found"]
    assert _accounts(app, citizens[4].national_id) == []


class Killed(RuntimeError):
    """What a worker process dying in the middle of a check looks like from the database."""


def test_a_worker_killed_mid_case_is_resumed_and_issues_exactly_one_account(
        ekyc_app, register_stub, citizens):
    app = ekyc_app()
    stub = register_stub(app)
    reader = FakeReader(reading_for(citizens[5]))
    runs = []

    def face_matcher(_evidence):
        runs.append(1)
        if len(runs) == 1:
            raise Killed("worker process killed")
        return policy.Result("pass", score=0.2, threshold=0.4, version="test-matcher")

    app.extensions["ekyc.face_matcher"] = face_matcher
    case = _submit(app, reader, *captured_case(app))
    assert case.state == "processing" and case.lease_owner is not None
    assert list(_final(case)) == ["upload_quality", "document_read", "document_consistency",
                                  "register_lookup", "register_fields_match",
                                  "register_portrait"]
    assert _accounts(app, citizens[5].national_id) == []
    with app.app_context():
        assert tasks.requeue_stuck() == []  # its lease is still live: nobody steals it
        assert pipeline.process(case.id, owner="another-worker") is False
        stuck = db.session.get(Case, case.id)
        stuck.lease_expires_at = utc(seconds=-1)  # the dead worker's lease runs out
        db.session.commit()
        assert tasks.requeue_stuck() == [case.id]  # JOBS_SYNC: processed right away
    case = _case(app, case.id)
    assert case.state == "approved" and case.runs == 2
    assert _final(case)["face_match"] == "pass"
    assert len(_accounts(app, citizens[5].national_id)) == 1
    assert reader.calls == 1 and _verify_calls(stub) == 1  # finished checks were not redone
    with app.app_context():  # running it again changes nothing
        assert tasks.process_case(case.id) is False
    assert len(_accounts(app, citizens[5].national_id)) == 1


def test_a_worker_killed_while_issuing_leaves_nothing_half_done(ekyc_app, register_stub,
                                                               citizens, monkeypatch):
    app = ekyc_app()
    register_stub(app)
    from ekyc import media

    real = media.set_retention
    calls = []

    def dies_once(case, decided):
        calls.append(1)
        if len(calls) == 1:
            raise Killed("killed after the account row was written, before commit")
        return real(case, decided)

    monkeypatch.setattr(media, "set_retention", dies_once)
    case = _submit(app, FakeReader(reading_for(citizens[1])), *captured_case(app))
    assert case.state == "processing" and case.account_id is None
    assert _accounts(app, citizens[1].national_id) == []  # the transaction never committed
    with app.app_context():
        db.session.get(Case, case.id).lease_expires_at = utc(seconds=-1)
        db.session.commit()
        tasks.requeue_stuck()
    case = _case(app, case.id)
    assert case.state == "approved"
    [account] = _accounts(app, citizens[1].national_id)
    assert case.account_id == account.id


def test_a_case_that_keeps_crashing_goes_to_an_operator(ekyc_app, register_stub, citizens):
    app = ekyc_app(EKYC_MAX_RUNS=2)
    register_stub(app)

    def always_dies(_evidence):
        raise Killed("bad input kills the worker every time")

    app.extensions["ekyc.liveness"] = always_dies
    case = _submit(app, FakeReader(reading_for(citizens[1])), *captured_case(app))
    with app.app_context():
        for _ in range(2):
            db.session.get(Case, case.id).lease_expires_at = utc(seconds=-1)
            db.session.commit()
            tasks.requeue_stuck()
    case = _case(app, case.id)
    assert case.state == "needs_review" and case.reason_codes == ["processing_error"]
    assert case.lease_owner is None and case.runs == 3
    assert _accounts(app, citizens[1].national_id) == []


def test_two_workers_never_process_one_case_at_once(ekyc_app, citizens):
    app = ekyc_app()
    case_id, token = captured_case(app)
    with app.app_context():
        case = service.open_case(case_id, token)
        cases.transition(case, "submitted")
        db.session.commit()
        first = pipeline.take_lease(case_id, "worker-a")
        assert first is not None and first.lease_owner == "worker-a"
        assert pipeline.take_lease(case_id, "worker-b") is None
        assert pipeline.process(case_id, owner="worker-b") is False
        # worker-a lost its lease (expired, taken over): it must stop writing.
        row = db.session.get(Case, case_id)
        row.lease_expires_at = utc(seconds=-1)
        db.session.commit()
        assert pipeline.take_lease(case_id, "worker-b") is not None
        with pytest.raises(pipeline.LeaseLost):
            pipeline._keep_lease(first, "worker-a")


def test_pid_is_stored_encrypted_with_a_lookup_hash_on_the_case(ekyc_app, register_stub,
                                                               citizens):
    app = ekyc_app()
    register_stub(app)
    case = _submit(app, FakeReader(reading_for(citizens[2])), *captured_case(app))
    with app.app_context():
        row = db.session.get(Case, case.id)
        assert row.pid_hash == crypto.keyed_hash("pid", citizens[2].national_id)
        assert citizens[2].national_id not in row.pid_encrypted
        assert crypto.decrypt(row.pid_encrypted) == citizens[2].national_id
        assert row.reading_encrypted and citizens[2].full_name not in row.reading_encrypted
        reading = json.loads(crypto.decrypt(row.reading_encrypted))
        assert reading["national_id"] == citizens[2].national_id
        checks = db.session.scalars(db.select(CaseCheck).filter_by(case_id=case.id)).all()
        assert all(citizens[2].national_id not in json.dumps(c.detail) for c in checks)


def _case_with_images(app, front: bytes, back: bytes) -> tuple[str, str]:
    from tests.ekyc.conftest import selfie_frames

    with app.app_context():
        case, token = service.start_case(channel="api", locale="vi",
                                         consent_version=policy.CONSENT_VERSION)
        service.add_document_image(case, "front", front, "image/jpeg")
        service.add_document_image(case, "back", back, "image/jpeg")
        challenge = service.new_challenge(case)
        service.add_selfie_frames(case, challenge["nonce"], selfie_frames(3), [0, 500, 1000])
        return case.id, token


def test_a_generated_card_through_the_real_document_reader(ekyc_app, register_stub, citizens):
    """No injected reader: the card is rendered by ekyc.document.synth and read with OCR."""
    synth = pytest.importorskip("ekyc.document.synth")
    pytest.importorskip("ekyc.document.reader")
    app = ekyc_app()
    register_stub(app)
    citizen = citizens[1]
    front, back, _truth = synth.make_card(citizen, seed=7)
    case_id, token = _case_with_images(app, front, back)
    app.extensions.pop("ekyc.reader", None)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
    case = _case(app, case_id)
    assert case.state == "approved", (case.reason_codes, [
        (c.name, c.outcome, c.reason_code, c.detail) for c in case.checks])
    assert next(c for c in case.checks if c.name == "document_read").version.startswith("cccd")
    [account] = _accounts(app, citizen.national_id)
    assert account.full_name == citizen.full_name and account.birthdate == citizen.date_of_birth
    with app.app_context():  # the card portrait was kept (encrypted) for the face check
        assert db.session.get(Case, case_id).live_media("portrait")


def test_a_photo_without_a_card_asks_the_citizen_to_retake_it(ekyc_app, register_stub):
    pytest.importorskip("ekyc.document.reader")
    from tests.ekyc.conftest import photo

    app = ekyc_app()
    stub = register_stub(app)
    case_id, token = _case_with_images(app, photo(), photo(color=(5, 5, 5)))
    app.extensions.pop("ekyc.reader", None)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
        view = service.status_view(db.session.get(Case, case_id), "en")
    assert view["state"] == "rejected" and view["next"] == "retry"
    assert view["reasons"][0]["code"] in ("image_quality", "document_unreadable")
    assert _verify_calls(stub) == 0


def test_a_long_register_outage_is_not_mistaken_for_a_crashing_case(ekyc_app, register_stub,
                                                                   citizens):
    app = ekyc_app(EKYC_MAX_RUNS=2, REGISTER_BREAKER_FAILURES=100)
    stub = register_stub(app)
    stub.stop()
    case = _submit(app, FakeReader(reading_for(citizens[2])), *captured_case(app))
    with app.app_context():
        for _ in range(4):  # more retries than EKYC_MAX_RUNS
            assert tasks.run_due(now=utc(days=2)) == 1
        waiting = db.session.get(Case, case.id)
        assert waiting.state == "waiting_register" and waiting.attempts == 5
    stub.start()
    with app.app_context():
        tasks.run_due(now=utc(days=2))
    assert _case(app, case.id).state == "approved"


# -- the card's portrait against the register's -------------------------------------------------

needs_faces = pytest.mark.skipif(faces_dir() is None,
                                 reason="faces-dev test data not found (set EKYC_TEST_DATA)")


def _passing_face_components(app) -> None:
    """Selfie match, liveness and face index (issue 4) stand-ins that pass, so that only the
    register-portrait comparison can stop a case."""
    for name in ("ekyc.face_matcher", "ekyc.liveness", "ekyc.face_index"):
        app.extensions[name] = lambda _ev: policy.Result("pass", score=0.1, threshold=0.4,
                                                         version="test")


def _portrait_check(case):
    return next(c for c in case.checks if c.name == "register_portrait")


@needs_faces
def test_a_swapped_portrait_goes_to_an_officer_with_its_reason(ekyc_app, register_stub,
                                                               citizens):
    """The real reader on a generated card that shows another (East/Southeast Asian) person's
    face: the pipeline fetches the register's portrait and the case goes to review."""
    from ekyc.document import synth

    app = ekyc_app(EKYC_FACE_CHECK="required")
    stub = register_stub(app)
    _passing_face_components(app)
    citizen = citizens[1]
    assert synth.face_group(citizen) == synth.face_group(citizens[2]) == "east_southeast_asian"
    front, back, truth = synth.make_card(citizen, forgery="swapped_portrait",
                                         swap_with=citizens[2], seed=7)
    assert truth["portrait_identity"] != portrait_identity(citizen)
    case_id, token = _case_with_images(app, front, back)
    app.extensions.pop("ekyc.reader", None)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
        view = service.status_view(db.session.get(Case, case_id), "en")
        reading = json.loads(crypto.decrypt(db.session.get(Case, case_id).reading_encrypted))
    case = _case(app, case_id)
    assert case.state == "needs_review" and case.reason_codes == ["portrait_register_mismatch"]
    check = _portrait_check(case)
    assert (check.outcome, check.reason_code) == ("review", "portrait_register_mismatch")
    assert check.score >= check.threshold > 0 and check.version.startswith("dlib-resnet-v1/")
    assert check.detail["outcome"] == "mismatch"
    assert stub.calls(f"/v1/citizens/{citizen.national_id}/portrait") == 1
    assert reading["portrait_check"]["outcome"] == "mismatch"  # kept with the reading
    assert {"code": "portrait_register_mismatch", "severity": "review"}.items() <= \
        reading["findings"][-1].items()
    assert view["next"] == "wait"
    assert "does not match the photo the population register holds" in \
        view["reasons"][0]["message"]
    assert _accounts(app, citizen.national_id) == []


def _reading_with_portrait(citizen, face_file: str):
    reading = reading_for(citizen)
    reading.portrait_jpeg = (faces_dir() / face_file).read_bytes()
    return reading


@needs_faces
def test_the_card_holders_own_face_passes_and_another_face_waits_for_an_officer(
        ekyc_app, register_stub, citizens):
    app = ekyc_app(EKYC_FACE_CHECK="required")
    register_stub(app)
    _passing_face_components(app)
    citizen = citizens[1]
    own = identity_images(portrait_identity(citizen))[0]  # the card is printed from it
    case = _submit(app, FakeReader(_reading_with_portrait(citizen, own)), *captured_case(app))
    assert case.state == "approved", case.reason_codes
    check = _portrait_check(case)
    assert check.outcome == "pass" and check.score < check.threshold
    # Another citizen's card showing someone else's face (the first one now has an account).
    other = identity_images(portrait_identity(citizens[2]))[1]
    case = _submit(app, FakeReader(_reading_with_portrait(citizens[4], other)),
                   *captured_case(app))
    assert case.state == "needs_review" and case.reason_codes == ["portrait_register_mismatch"]


@needs_faces
def test_skip_dev_records_the_comparison_without_stopping_the_case(ekyc_app, register_stub,
                                                                  citizens):
    app = ekyc_app(EKYC_FACE_CHECK="skip-dev")
    register_stub(app)
    citizen = citizens[3]
    other = identity_images(portrait_identity(citizens[4]))[1]
    case = _submit(app, FakeReader(_reading_with_portrait(citizen, other)), *captured_case(app))
    assert case.state == "approved"
    check = _portrait_check(case)
    assert (check.outcome, check.reason_code) == ("skipped", "portrait_check_skipped")
    assert check.score >= check.threshold and check.detail["outcome"] == "mismatch"


@needs_faces
def test_register_down_while_fetching_the_portrait_the_case_waits(ekyc_app, register_stub,
                                                                  citizens, monkeypatch):
    from ekyc import register_client

    app = ekyc_app(EKYC_FACE_CHECK="required")
    register_stub(app)
    _passing_face_components(app)
    citizen = citizens[2]
    real = register_client.portrait
    calls = []

    def down_once(national_id, **kwargs):
        calls.append(national_id)
        if len(calls) == 1:
            raise register_client.RegisterUnavailable("status 503")
        return real(national_id, **kwargs)

    monkeypatch.setattr(register_client, "portrait", down_once)
    own = identity_images(portrait_identity(citizen))[0]
    reader = FakeReader(_reading_with_portrait(citizen, own))
    case = _submit(app, reader, *captured_case(app))
    assert case.state == "waiting_register"
    assert [c.outcome for c in case.checks if c.name == "register_portrait"] == ["pending"]
    with app.app_context():
        assert tasks.run_due(now=case.next_attempt_at) == 1
    case = _case(app, case.id)
    assert case.state == "approved" and _final(case)["register_portrait"] == "pass"
    assert reader.calls == 1 and calls == [citizen.national_id] * 2
