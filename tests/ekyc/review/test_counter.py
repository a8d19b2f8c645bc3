"""Assisted onboarding at a counter (ekyc/review/counter.py) with the real pipeline and the
register stub: consent by the citizen, scanned card, counter photos with the operator's
attestation, a level 2 account (or a level-1 account raised to 2), the activation link shown
once and opened on the citizen's phone."""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pyotp
import pytest

from ekyc import policy, service
from ekyc.models import Case, CaseCheck
from idp.extensions import db
from tests.conftest import ISSUER
from tests.ekyc.conftest import FakeReader, captured_case, photo, reading_for, selfie_frames
from tests.ekyc.review.conftest import audit_events as _events
from tests.ekyc.review.conftest import console_client as _console_client
from tests.ekyc.test_pipeline import _accounts
from tests.helpers import csrf_token


@pytest.fixture
def counter_app(ekyc_app, register_stub, staff):
    app = ekyc_app()
    register_stub(app)
    staff(app)
    return app


def _post(client, url, data=None, page_url=None, **kw):
    page = client.get(page_url or url)
    assert page.status_code == 200, page.text[:300]
    return client.post(url, data={"csrf_token": csrf_token(page.text), **(data or {})}, **kw)


def _counter_cases(app) -> list[Case]:
    with app.app_context():
        rows = db.session.scalars(db.select(Case).filter_by(channel="counter")).all()
        db.session.expunge_all()
        return rows


def _files(**named):
    return {name: (io.BytesIO(data), f"{name}.jpg", "image/jpeg")
            for name, data in named.items()}


def _start(client) -> str:
    """The citizen agrees on the counter screen (in English); returns the new case id."""
    response = _post(client, "/ops/counter", {"consent": "yes", "citizen_lang": "en",
                                              "consent_version": policy.CONSENT_VERSION},
                     page_url="/ops/counter?citizen_lang=en")
    assert response.status_code == 302, response.text[:300]
    match = re.search(r"/ops/counter/([0-9a-f-]{36})/documents", response.headers["Location"])
    assert match
    return match.group(1)


def _scan_card(client, case_id: str) -> None:
    url = f"/ops/counter/{case_id}/documents"
    response = _post(client, url, {**_files(front=photo(), back=photo(color=(10, 10, 10)))},
                     content_type="multipart/form-data")
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/ops/counter/{case_id}/selfie")


def _frames(count: int = 4) -> list:
    return [(io.BytesIO(data), f"frame{i}.jpg", "image/jpeg")
            for i, data in enumerate(selfie_frames(count))]


def _photograph(client, case_id: str, attest: bool = True):
    data = {"frames": _frames()}
    if attest:
        data["attest"] = "yes"
    return _post(client, f"/ops/counter/{case_id}/selfie", data,
                 content_type="multipart/form-data")


def _onboard(app, client, citizen, findings=()) -> str:
    """The whole counter flow for `citizen`, through submission; returns the case id."""
    case_id = _start(client)
    _scan_card(client, case_id)
    assert _photograph(client, case_id).status_code == 302
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizen, findings=findings))
    response = _post(client, f"/ops/counter/{case_id}/submit",
                     page_url=f"/ops/counter/{case_id}")
    assert response.status_code == 302
    return case_id


def _activate_on_phone(app, link: str) -> None:
    """The citizen opens the link on their own phone and activates the account."""
    assert link.startswith(ISSUER + "/ops/counter/activate/")
    phone = app.test_client()
    assert phone.get(urlsplit(link).path).status_code == 200  # a preview does not use it up
    response = _post(phone, urlsplit(link).path)
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/onboarding/activate")
    response = _post(phone, "/onboarding/activate",
                     {"password": "Counter-Citizen-7", "password2": "Counter-Citizen-7"})
    assert response.status_code == 302
    page = phone.get("/onboarding/activate/app")
    secret = re.search(r"([A-Z2-7]{4}(?: [A-Z2-7]{4}){3,})", page.text).group(1)
    code = pyotp.TOTP(secret.replace(" ", "")).now()
    response = phone.post("/onboarding/activate/app",
                          data={"csrf_token": csrf_token(page.text), "code": code})
    assert response.status_code == 302, response.text[:300]


def _link(client, case_id: str) -> str:
    response = _post(client, f"/ops/counter/{case_id}/link", page_url=f"/ops/counter/{case_id}")
    assert response.status_code == 200
    assert 'src="data:image/png;base64,' in response.text  # the QR code
    return re.search(r'<code id="activation-link">([^<]+)</code>', response.text).group(1)


def test_counter_onboarding_yields_a_level_2_account_activated_on_the_phone(counter_app,
                                                                            citizens):
    app, citizen = counter_app, citizens[2]
    client = _console_client(app, "op1")
    page = client.get("/ops/counter?citizen_lang=en")
    assert page.status_code == 200
    with app.app_context():
        assert policy.consent_text("en").split("\n")[0] in page.text
    assert "I agree" in page.text

    case_id = _onboard(app, client, citizen)
    page = client.get(f"/ops/counter/{case_id}")
    assert 'data-state="approved"' in page.text
    [account] = _accounts(app, citizen.national_id)
    assert account.level == 2 and account.status == "pending_activation"
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert (case.target_level, case.account_id) == (2, account.id)
        op1 = case.counter_operator_id
        liveness = db.session.scalar(db.select(CaseCheck).filter_by(case_id=case_id,
                                                                    name="liveness"))
        assert liveness.outcome == "pass"
        assert liveness.detail == {"method": "in_person", "operator_id": op1}
    [started] = _events(app, "ops.counter_started")
    [consent] = _events(app, "ops.counter_consent")
    assert started.actor == consent.actor == "op1"
    assert started.detail["case_id"] == consent.detail["case_id"] == case_id
    [issued] = [e for e in _events(app, "account.issued") if e.account_id == account.id]
    assert issued.detail["level"] == 2

    link = _link(client, case_id)
    assert link not in client.get(f"/ops/counter/{case_id}").text  # shown once
    first_phone = app.test_client()
    assert _post(first_phone, urlsplit(link).path).status_code == 302
    assert app.test_client().get(urlsplit(link).path).status_code == 410  # it works once
    assert first_phone.get("/onboarding/activate").status_code == 200
    newer = _link(client, case_id)  # a new link cancels what the previous one opened
    assert first_phone.get("/onboarding/activate").status_code == 302
    _activate_on_phone(app, newer)
    assert _accounts(app, citizen.national_id)[0].status == "active"
    assert app.test_client().get(urlsplit(newer).path).status_code == 410

    # The citizen later loses their phone: after the in-person check the authenticators are
    # reset and a new link, shown once, lets them activate again on a new phone.
    page = f"/ops/accounts/{account.id}?purpose=counter"
    response = _post(client, f"/ops/accounts/{account.id}/reset",
                     {"in_person": "yes", "purpose": "counter"}, page_url=page)
    assert response.status_code == 200
    new_link = re.search(r'<code id="activation-link">([^<]+)</code>', response.text).group(1)
    assert new_link != link and new_link not in client.get(page).text
    assert _accounts(app, citizen.national_id)[0].status == "pending_activation"
    _activate_on_phone(app, new_link)
    assert _accounts(app, citizen.national_id)[0].status == "active"


def test_a_level_1_account_is_raised_to_level_2_at_the_counter(counter_app, citizens):
    app, citizen = counter_app, citizens[3]
    case_id, token = captured_case(app)  # onboarded remotely first: level 1
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizen))
    with app.app_context():
        service.submit(service.open_case(case_id, token))
        db.session.remove()
    [before] = _accounts(app, citizen.national_id)
    assert before.level == 1

    client = _console_client(app, "op2")
    counter_case = _onboard(app, client, citizen)
    assert 'data-state="approved"' in client.get(f"/ops/counter/{counter_case}").text
    [after] = _accounts(app, citizen.national_id)  # still one account, now level 2
    assert (after.id, after.level, after.onboarded_case_id) == (before.id, 2, case_id)
    [raised] = _events(app, "account.level_raised")
    assert raised.account_id == after.id and raised.detail["case_id"] == counter_case

    # A second counter onboarding of the same number: it is level 2 already.
    second = _onboard(app, client, citizen)
    [case] = [c for c in _counter_cases(app) if c.id == second]
    assert case.state == "rejected" and case.reason_codes == ["already_enrolled"]


def test_a_counter_case_sent_to_review_is_decided_by_another_operator(counter_app, citizens):
    app, citizen = counter_app, citizens[5]
    client = _console_client(app, "op1")
    case_id = _onboard(app, client, citizen, findings=(("printed_name_mismatch", "review"),))
    page = client.get(f"/ops/counter/{case_id}")
    assert 'data-state="needs_review"' in page.text and "Another operator decides" in page.text
    approve = {"kind": "approve", "reason_code": "ocr_misread", "purpose": "review"}
    refused = _post(client, f"/ops/cases/{case_id}/decide", approve, page_url="/ops/counter")
    assert refused.status_code in (403, 409)
    assert _counter_cases(app)[0].state == "needs_review"
    supervisor = _console_client(app, "sup1")
    decided = _post(supervisor, f"/ops/cases/{case_id}/decide", approve,
                    page_url="/ops/accounts")
    assert decided.status_code == 302
    assert _counter_cases(app)[0].state == "approved"
    [account] = _accounts(app, citizen.national_id)
    assert account.level == 2


def test_the_counter_does_not_go_on_without_consent_or_attestation(counter_app):
    app = counter_app
    client = _console_client(app, "op1")
    refused = _post(client, "/ops/counter", {"consent_version": policy.CONSENT_VERSION,
                                             "citizen_lang": "en"})
    assert refused.status_code == 400
    assert _counter_cases(app) == []

    case_id = _start(client)
    early = _post(client, f"/ops/counter/{case_id}/submit", page_url=f"/ops/counter/{case_id}")
    assert early.status_code == 400  # nothing captured yet
    _scan_card(client, case_id)
    response = _photograph(client, case_id, attest=False)
    assert response.status_code == 400
    assert "present in person" in response.text
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert case.live_media("selfie") == [] and case.state == "capturing"
    response = _post(client, f"/ops/counter/{case_id}/submit",
                     page_url=f"/ops/counter/{case_id}")
    assert response.status_code == 400
    assert _counter_cases(app)[0].state == "capturing"


def test_only_its_operator_continues_a_counter_case_and_auditors_never_run_one(counter_app):
    app = counter_app
    client = _console_client(app, "op1")
    case_id = _start(client)
    other = _console_client(app, "op2")
    assert other.get(f"/ops/counter/{case_id}/documents").status_code == 404

    auditor = _console_client(app, "aud1")
    assert auditor.get("/ops/counter").status_code == 403
    token = csrf_token(auditor.get("/ops/accounts").text)  # a page auditors may see
    for url in ("/ops/counter", f"/ops/counter/{case_id}/submit",
                f"/ops/counter/{case_id}/link"):
        response = auditor.post(url, data={"csrf_token": token, "consent": "yes",
                                           "consent_version": policy.CONSENT_VERSION})
        assert response.status_code == 403
    assert auditor.get(f"/ops/counter/{case_id}").status_code == 403
    assert len(_counter_cases(app)) == 1
