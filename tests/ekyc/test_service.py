"""The onboarding service (ekyc/service.py): what the citizen pages and the mobile API can do
with a case, and what they are refused."""

from __future__ import annotations

import hashlib
import time

import pyotp
import pytest
from flask_babel import force_locale

from ekyc import cases, policy, service
from ekyc.models import Case, Challenge, MediaObject
from ekyc.uploads import UploadRejected
from idp.extensions import db
from idp.models import Account, AuditEvent
from tests.ekyc.conftest import FakeReader, captured_case, photo, reading_for, selfie_frames, utc
from tests.helpers import csrf_token


def _start(locale="en"):
    return service.start_case(channel="web", locale=locale,
                              consent_version=policy.CONSENT_VERSION)


def test_a_case_records_the_consent_text_version_and_hash(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case, token = _start("vi")
        text = policy.consent_text("vi")
        assert case.consent_version == policy.CONSENT_VERSION
        assert case.consent_text_hash == hashlib.sha256(text.encode()).hexdigest()
        assert case.state == "created" and case.locale == "vi"
        assert token not in (case.token_hash, case.id) and len(token) >= 40
        assert db.session.scalar(db.select(AuditEvent).filter_by(
            event="ekyc.case_started")).detail["consent_version"] == policy.CONSENT_VERSION


def test_no_case_without_consent_to_the_current_text(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        for version in ("", "2020-01-v0", None):
            with pytest.raises(service.CaseError) as info:
                service.start_case(channel="web", locale="en", consent_version=version)
            assert info.value.code == "consent_required"
        assert db.session.scalar(db.select(db.func.count(Case.id))) == 0


def test_the_case_token_opens_only_its_own_case(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        first, first_token = _start()
        _second, second_token = _start()
        assert service.open_case(first.id, first_token).id == first.id
        assert service.open_case(first.id, second_token) is None
        assert service.open_case(first.id, first_token[:-1] + "x") is None
        assert service.open_case("no-such-case", first_token) is None
        assert service.open_case(first.id, "") is None


def test_document_images_are_cleaned_stored_and_replaceable(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case, _ = _start()
        service.add_document_image(case, "front", photo(), "image/jpeg")
        assert case.state == "capturing"
        service.add_document_image(case, "front", photo(color=(1, 1, 1)), "image/jpeg")
        assert len(case.live_media("front")) == 1
        with pytest.raises(service.CaseError) as info:
            service.add_document_image(case, "selfie", photo(), "image/jpeg")
        assert info.value.code == "bad_side"
        with pytest.raises(UploadRejected) as refused:
            service.add_document_image(case, "back", b"%PDF-1.4 not a photo", "application/pdf")
        assert refused.value.status == 415 and not case.live_media("back")


def test_a_challenge_has_two_or_three_distinct_actions_and_a_deadline(ekyc_app):
    app = ekyc_app(CHALLENGE_TTL=90)
    with app.app_context():
        case, _ = _start()
        seen = set()
        for _ in range(12):
            challenge = service.new_challenge(case)
            actions = challenge["actions"]
            assert 2 <= len(actions) <= 3 and len(set(actions)) == len(actions)
            assert set(actions) <= set(service.CHALLENGE_ACTIONS)
            assert challenge["ttl_seconds"] == 90
            assert challenge["expires_at"] > challenge["issued_at"]
            seen.add(tuple(actions))
        assert len(seen) > 1  # random, not a fixed script a replayed video could follow
        stored = db.session.scalars(db.select(Challenge)).all()
        assert all(challenge["nonce"] not in c.nonce_hash for c in stored)


def test_selfie_frames_answer_one_challenge_once(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case, _ = _start()
        nonce = service.new_challenge(case)["nonce"]
        service.add_selfie_frames(case, nonce, selfie_frames(4), [0, 300, 600, 900])
        kinds = sorted(m.kind for m in case.live_media("selfie"))
        assert kinds == ["selfie_0", "selfie_1", "selfie_2", "selfie_3"]
        with pytest.raises(service.CaseError) as info:
            service.add_selfie_frames(case, nonce, selfie_frames(4), [0, 300, 600, 900])
        assert (info.value.code, info.value.status) == ("challenge_used", 409)
        # A new challenge's frames replace the old ones.
        again = service.new_challenge(case)["nonce"]
        service.add_selfie_frames(case, again, selfie_frames(3), [0, 400, 800])
        assert len(case.live_media("selfie")) == 3
        used = db.session.scalar(db.select(Challenge).filter(Challenge.frame_count == 3))
        assert used.timestamps_ms == [0, 400, 800] and used.used
        # Photos picked from files have no capture timing: accepted, recorded as unknown.
        untimed = service.new_challenge(case)["nonce"]
        service.add_selfie_frames(case, untimed, selfie_frames(3), [])
        answered = db.session.scalars(db.select(Challenge).filter(
            Challenge.case_id == case.id, Challenge.used_at.is_not(None))).all()
        assert sorted(c.timestamps_ms for c in answered) == [[], [0, 300, 600, 900],
                                                              [0, 400, 800]]
        assert len(case.live_media("selfie")) == 3


@pytest.mark.parametrize("frames, stamps, code", [
    (2, [0, 100], "frame_count"),
    (14, list(range(0, 1400, 100)), "frame_count"),
    (3, [0, 500, 400], "frame_timing"),
    (3, [0, 0, 100], "frame_timing"),
    (3, [0, 100], "frame_timing"),
    (3, [0, 100, 10_000_000], "frame_timing"),
])
def test_bad_selfie_submissions_are_refused(ekyc_app, frames, stamps, code):
    app = ekyc_app()
    with app.test_request_context("/"):  # messages render in the request's language
        case, _ = _start()
        nonce = service.new_challenge(case)["nonce"]
        with pytest.raises(service.CaseError) as info:
            service.add_selfie_frames(case, nonce, selfie_frames(frames), stamps)
        assert info.value.code == code and str(info.value.message)
        assert not case.live_media("selfie")
        # The refused attempt did not spend the nonce.
        service.add_selfie_frames(case, nonce, selfie_frames(3), [0, 1, 2])


def test_an_expired_or_foreign_challenge_is_refused(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case, _ = _start()
        other, _ = _start()
        foreign = service.new_challenge(other)["nonce"]
        with pytest.raises(service.CaseError) as info:
            service.add_selfie_frames(case, foreign, selfie_frames(3), [0, 1, 2])
        assert info.value.code == "challenge_unknown"
        nonce = service.new_challenge(case)["nonce"]
        challenge = db.session.scalar(db.select(Challenge).filter_by(case_id=case.id))
        challenge.expires_at = utc(seconds=-1)
        db.session.commit()
        with pytest.raises(service.CaseError) as info:
            service.add_selfie_frames(case, nonce, selfie_frames(3), [0, 1, 2])
        assert (info.value.code, info.value.status) == ("challenge_expired", 410)


def test_submit_needs_every_image_and_is_idempotent(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    register_stub(app)
    reader = FakeReader(reading_for(citizens[2]))
    app.extensions["ekyc.reader"] = reader
    with app.app_context():
        case, _ = _start()
        service.add_document_image(case, "front", photo(), "image/jpeg")
        with pytest.raises(service.CaseError) as info:
            service.submit(case)
        assert info.value.code == "incomplete" and case.state == "capturing"
    case_id, token = captured_case(app)
    with app.app_context():
        case = service.open_case(case_id, token)
        service.submit(case)
        service.submit(case)
        assert case.state == "approved" and case.runs == 1 and reader.calls == 1
        with pytest.raises(service.CaseError) as info:  # nothing can be added any more
            service.add_document_image(case, "front", photo(), "image/jpeg")
        assert (info.value.code, info.value.status) == ("case_closed", 409)


def test_status_view_tells_the_citizen_what_is_next(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    register_stub(app)
    with app.app_context():
        case, _ = _start()
        view = service.status_view(case, "en")
        assert view["state"] == "created" and view["next"] == "capture" and view["reasons"] == []
        assert [s["name"] for s in view["steps"]] == list(service.STEP_NAMES)
        assert {s["name"] for s in view["steps"] if s["done"]} == {"consent"}
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizens[1], name="Lê Văn Sai"))
    case_id, token = captured_case(app)
    with app.test_request_context("/"):
        case = service.open_case(case_id, token)
        service.submit(case)
        view = service.status_view(case, "en")
        assert view["state"] == "rejected" and view["next"] == "contact"
        with force_locale("en"):
            expected = str(policy.reason_message("register_mismatch"))
        assert view["reasons"] == [{"code": "register_mismatch", "message": expected}]
        assert "population register" in expected
        assert all(step["done"] for step in view["steps"])


def _approved(app, citizens, index=3):
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizens[index]))
    case_id, token = captured_case(app)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
    return case_id, token


def test_activation_sets_password_and_totp_then_the_citizen_signs_in(ekyc_app, register_stub,
                                                                     citizens):
    app = ekyc_app()
    register_stub(app)
    case_id, token = _approved(app, citizens)
    national_id = citizens[3].national_id
    client = app.test_client()

    def login(password):
        page = client.get("/login")
        return client.post("/login", data={"csrf_token": csrf_token(page.text),
                                           "national_id": national_id, "password": password})

    assert login("Any-Password-1").status_code == 401  # pending: no password yet
    secret = service.new_totp_secret()
    with app.app_context():
        case = service.open_case(case_id, token)
        account = service.activation_allowed(case)
        assert account is not None and account.status == "pending_activation"
        assert service.totp_provisioning_uri(case, secret).startswith("otpauth://totp/")
        with pytest.raises(service.CaseError) as info:
            service.activate(case, "short", secret, pyotp.TOTP(secret).now())
        assert info.value.code == "weak_password"
        with pytest.raises(service.CaseError) as info:
            service.activate(case, "Citizen-New-Pass-1", secret, "000000"
                             if pyotp.TOTP(secret).now() != "000000" else "111111")
        assert info.value.code == "bad_totp"
        activated = service.activate(case, "Citizen-New-Pass-1", secret,
                                     pyotp.TOTP(secret).now())
        assert activated.status == "active" and activated.password_hash.startswith("$argon2id$")
        assert service.activation_allowed(case) is None
        assert service.status_view(case, "en")["next"] == "done"
        with pytest.raises(service.CaseError) as info:
            service.activate(case, "Another-Pass-22", secret, pyotp.TOTP(secret).now())
        assert info.value.code == "not_activatable"
        assert db.session.scalar(db.select(AuditEvent).filter_by(
            event="account.activated")).account_id == activated.id
    response = login("Citizen-New-Pass-1")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/otp")
    page = client.get("/login/otp")
    next_code = pyotp.TOTP(secret).at(time.time() + 30)  # the activation spent this step
    response = client.post("/login/otp", data={"csrf_token": csrf_token(page.text),
                                               "code": next_code})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    with app.app_context():
        assert db.session.scalar(db.select(AuditEvent).filter_by(
            event="login.success")).account_id == activated.id


def test_a_locked_account_cannot_sign_in_even_with_its_password(ekyc_app, register_stub,
                                                                citizens):
    app = ekyc_app()
    register_stub(app)
    case_id, token = _approved(app, citizens, index=4)
    secret = service.new_totp_secret()
    with app.app_context():
        case = service.open_case(case_id, token)
        account = service.activate(case, "Citizen-New-Pass-1", secret, pyotp.TOTP(secret).now())
        account.status, account.status_reason = "locked", "card_revoked"
        db.session.commit()
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": csrf_token(page.text),
                                           "national_id": citizens[4].national_id,
                                           "password": "Citizen-New-Pass-1"})
    assert response.status_code == 401 and "/login/otp" not in response.headers.get("Location",
                                                                                    "")
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).filter_by(event="login.account_locked"))
        assert event.account_id == account.id and event.detail["reason"] == "card_revoked"


def test_nothing_about_a_case_is_kept_in_plain_text(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    register_stub(app)
    case_id, _ = _approved(app, citizens, index=2)
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert case.state == cases.APPROVED
        account = db.session.get(Account, case.account_id)
        assert citizens[2].national_id not in (account.pid_encrypted + account.pid_hash)
        sizes = db.session.scalars(db.select(MediaObject.size).filter_by(case_id=case_id)).all()
        assert len(sizes) >= 7  # front, back, portrait, four selfie frames


def test_challenges_per_case_are_limited(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case, _ = _start()
        for _ in range(service.MAX_CHALLENGES):
            service.new_challenge(case)
        with pytest.raises(service.CaseError) as info:
            service.new_challenge(case)
        assert (info.value.code, info.value.status) == ("too_many_challenges", 429)
