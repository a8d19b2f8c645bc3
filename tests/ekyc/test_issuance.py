"""Identity issuance (ekyc/issuance.py): one account per ID number, whatever the timing."""

from __future__ import annotations

import pytest

from ekyc import issuance, pipeline, policy, service
from ekyc.models import Case
from idp import crypto
from idp.extensions import db
from idp.models import Account
from tests.ekyc.conftest import FakeReader, captured_case, reading_for


def _run(app, citizen, **reading):
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizen, **reading))
    case_id, token = captured_case(app)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
        case = db.session.get(Case, case_id)
        result = case.state, list(case.reason_codes), case.account_id
        db.session.remove()
    return result


def _count(app, national_id) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Account.id)).filter_by(
            pid_hash=crypto.keyed_hash("pid", national_id)))


def test_two_cases_for_the_same_number_make_one_account(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    register_stub(app)
    first = _run(app, citizens[1])
    second = _run(app, citizens[1])
    assert first[0] == "approved" and first[2]
    assert second[:2] == ("rejected", ["already_enrolled"]) and second[2] is None
    assert _count(app, citizens[1].national_id) == 1


def test_the_demo_citizen_who_already_has_an_account_is_refused(ekyc_app, register_stub,
                                                                citizens):
    app = ekyc_app()
    register_stub(app)
    assert citizens[0].national_id == "001199000001"  # seeded by `flask seed`
    state, reasons, _ = _run(app, citizens[0])
    assert (state, reasons) == ("rejected", ["already_enrolled"])
    assert _count(app, citizens[0].national_id) == 1


def test_a_case_that_checked_before_the_other_committed_is_still_refused(
        ekyc_app, register_stub, citizens, monkeypatch):
    """Both cases passed the duplicate check; the second one meets the account at issuance."""
    app = ekyc_app()
    register_stub(app)
    assert _run(app, citizens[2])[0] == "approved"
    monkeypatch.setattr(pipeline.CaseEvidence, "enrolled_elsewhere", lambda self: False)
    state, reasons, account_id = _run(app, citizens[2])
    assert (state, reasons, account_id) == ("rejected", ["already_enrolled"], None)
    assert _count(app, citizens[2].national_id) == 1


def test_a_concurrent_insert_is_caught_by_the_unique_number(ekyc_app, register_stub, citizens,
                                                            monkeypatch):
    """The other case's account appears between our lookup and our insert."""
    app = ekyc_app()
    register_stub(app)
    assert _run(app, citizens[3])[0] == "approved"
    monkeypatch.setattr(pipeline.CaseEvidence, "enrolled_elsewhere", lambda self: False)
    monkeypatch.setattr(issuance, "find_account", lambda national_id: None)
    state, reasons, _ = _run(app, citizens[3])
    assert (state, reasons) == ("rejected", ["already_enrolled"])
    assert _count(app, citizens[3].national_id) == 1


def _bare_case():
    case, _ = service.start_case(channel="web", locale="en",
                                 consent_version=policy.CONSENT_VERSION)
    return case


FIELDS = {"national_id": "079200105810", "full_name": "Nguyễn Trọng Thanh Hùng",
          "date_of_birth": "2000-08-15", "sex": "M",
          "residence": "Số 60 ngõ 170 Phạm Văn Đồng, Trảng Bàng, Tây Ninh"}


def test_issuing_again_for_the_same_case_finds_the_same_account(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case = _bare_case()
        account = issuance.issue_account(case, FIELDS, {"residence": "match"})
        db.session.commit()
        again = issuance.issue_account(case, FIELDS, {"residence": "match"})
        assert again.id == account.id == case.account_id
        other = _bare_case()
        with pytest.raises(issuance.AlreadyEnrolled):
            issuance.issue_account(other, FIELDS, {})


def test_only_register_verified_fields_go_into_the_account(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        account = issuance.issue_account(_bare_case(), FIELDS, {"residence": "mismatch"})
        db.session.commit()
        assert account.address is None  # the register did not confirm it
        assert (account.family_name, account.given_name) == ("Nguyễn", "Trọng Thanh Hùng")
        assert account.gender == "male" and account.level == 1
        assert account.status == "pending_activation" and account.register_checked_at


def _fields(citizen) -> dict:
    return {"national_id": citizen.national_id, "full_name": citizen.full_name,
            "date_of_birth": citizen.date_of_birth.isoformat(), "sex": citizen.sex}


def _channel_case(channel: str, level: int) -> Case:
    case = Case(state="processing", channel=channel, locale="en", token_hash="-",
                consent_version=policy.CONSENT_VERSION, consent_text_hash="-",
                target_level=level, counter_operator_id="op-1" if channel == "counter" else None)
    db.session.add(case)
    db.session.flush()
    return case


def _raised_events(account_id: str) -> int:
    from idp.models import AuditEvent

    return db.session.scalar(db.select(db.func.count(AuditEvent.id)).filter_by(
        event="account.level_raised", account_id=account_id))


def test_a_counter_case_raises_a_level_1_account_to_level_2_once(app, citizens):
    with app.app_context():
        remote = _channel_case("web", 1)
        account = issuance.issue_account(remote, _fields(citizens[4]), {})
        db.session.commit()
        assert account.level == 1
        with pytest.raises(issuance.AlreadyEnrolled):  # remote: one account per number
            issuance.issue_account(_channel_case("web", 1), _fields(citizens[4]), {})

        counter = _channel_case("counter", 2)
        raised = issuance.issue_account(counter, _fields(citizens[4]), {})
        db.session.commit()
        assert (raised.id, raised.level, raised.onboarded_case_id) == (account.id, 2, remote.id)
        assert counter.account_id is None  # the remote case keeps the (unique) link
        resumed = issuance.issue_account(counter, _fields(citizens[4]), {})  # a crash, rerun
        db.session.commit()
        assert resumed.id == account.id and _raised_events(account.id) == 1
        with pytest.raises(issuance.AlreadyEnrolled):  # level 2 already: nothing to raise
            issuance.issue_account(_channel_case("counter", 2), _fields(citizens[4]), {})

        fresh = _channel_case("counter", 2)
        new = issuance.issue_account(fresh, _fields(citizens[5]), {})
        db.session.commit()
        assert (new.level, new.status, fresh.account_id) == (2, "pending_activation", new.id)
        assert _count(app, citizens[5].national_id) == 1
        db.session.remove()
