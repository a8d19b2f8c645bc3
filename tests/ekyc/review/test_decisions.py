"""Console decisions (`ekyc.review.decisions`) on cases decided by the real pipeline: approve,
reject, recapture, overrides under four eyes, role limits, races and CSRF."""

from __future__ import annotations

import datetime as dt

from ekyc import cases, service
from ekyc.models import Case, CaseDecision
from idp import crypto
from idp.extensions import db
from idp.models import Account, AuditEvent
from tests.ekyc.conftest import FakeReader, captured_case, photo, reading_for, selfie_frames
from tests.ekyc.review.conftest import case_state, pipeline_case
from tests.ekyc.review.conftest import console_client as console
from tests.helpers import csrf_token

REJECT = (("qr_mrz_id_mismatch", "reject"),)


def page_token(client, case_id: str) -> str:
    """The session's CSRF token (from the case page when it has a form, else the sign-out
    confirmation page, which always has one)."""
    page = client.get(f"/ops/cases/{case_id}?purpose=review")
    assert page.status_code == 200
    if 'name="csrf_token"' not in page.text:
        page = client.get("/ops/logout")
    return csrf_token(page.text)


def post(client, url: str, case_id: str, **form):
    return client.post(url, data={"csrf_token": page_token(client, case_id), **form})


def claim(client, case_id):
    return post(client, f"/ops/cases/{case_id}/claim", case_id)


def decide(client, case_id, kind, reason, note=""):
    return post(client, f"/ops/cases/{case_id}/decide", case_id, kind=kind, reason_code=reason,
                note=note)


def load(app, case_id) -> Case:
    with app.app_context():
        case = db.session.get(Case, case_id)
        case.checks, case.events, case.media  # noqa: B018
        db.session.expunge_all()
        return case


def rows(app, model, **where):
    with app.app_context():
        found = db.session.scalars(db.select(model).filter_by(**where)).all()
        db.session.expunge_all()
        return found


def accounts_of(app, citizen) -> list[Account]:
    with app.app_context():
        key = crypto.keyed_hash("pid", citizen.national_id)
    return rows(app, Account, pid_hash=key)


def test_entering_review_starts_the_review_clock_and_leaving_stops_it(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    case = load(app, case_id)
    assert case.state == "needs_review" and case.review_since is not None
    assert case.province == people[1].national_id[:3]
    client = console(app, "op1")
    assert claim(client, case_id).status_code == 302
    assert decide(client, case_id, "reject", "document_forged").status_code == 302
    assert load(app, case_id).review_since is None


def test_operator_approves_a_claimed_review_case_and_the_account_is_issued(world):
    app, ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "op1")
    assert claim(client, case_id).status_code == 302
    response = decide(client, case_id, "approve", "ocr_misread", note="QR agrees, OCR confused a letter")
    assert response.status_code == 302
    case = load(app, case_id)
    assert case.state == "approved" and case.reason_codes == []
    [account] = accounts_of(app, people[1])
    assert account.id == case.account_id and account.status == "pending_activation"
    assert ("needs_review", "approved") in cases.history(case)
    assert case.events[-1].actor == "op1" and case.events[-1].reason == "ocr_misread"
    [row] = rows(app, CaseDecision, case_id=case_id)
    assert (row.kind, row.status, row.operator_id) == ("approve", "done", ids["op1"])
    with app.app_context():
        assert "OCR" not in row.note_encrypted
        assert crypto.decrypt(row.note_encrypted) == "QR agrees, OCR confused a letter"
    [event] = rows(app, AuditEvent, event="ops.decision")
    assert event.actor == "op1" and event.detail == {"case_id": case_id, "kind": "approve",
                                                     "reason_code": "ocr_misread"}
    assert "confused" not in str([e.detail for e in rows(app, AuditEvent)])  # notes never logged
    # The retention clock started at the decision.
    assert all(m.expires_at is not None for m in case.media if m.deleted_at is None)
    # The citizen's status page now leads to activation.
    with app.app_context():
        assert service.status_view(db.session.get(Case, case_id), "en")["next"] == "activate"


def test_a_decision_needs_the_case_to_be_held(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "op1")
    response = decide(client, case_id, "approve", "ocr_misread")
    assert response.status_code == 403
    assert "Claim the case first" in response.text
    assert case_state(app, case_id) == "needs_review" and accounts_of(app, people[1]) == []
    # Another operator's case: op2 may not decide it either; a supervisor may.
    assert claim(client, case_id).status_code == 302
    assert decide(console(app, "op2"), case_id, "reject", "other").status_code == 403
    assert decide(console(app, "sup1"), case_id, "reject", "other").status_code == 302
    assert case_state(app, case_id) == "rejected"


def test_an_auditor_can_neither_claim_nor_decide(world):
    app, ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "aud1")
    page = client.get(f"/ops/cases/{case_id}?purpose=audit")
    assert page.status_code == 200 and 'data-kind="approve"' not in page.text
    assert "Claim this case" not in page.text
    token = page_token(client, case_id)
    for url, form in ((f"/ops/cases/{case_id}/claim", {}),
                      (f"/ops/cases/{case_id}/decide", {"kind": "approve",
                                                        "reason_code": "ocr_misread"}),
                      (f"/ops/cases/{case_id}/assign", {"assignee": ids["op1"]})):
        response = client.post(url, data={"csrf_token": token, **form})
        assert response.status_code == 403, url
    case = load(app, case_id)
    assert case.state == "needs_review" and case.assignee_id is None
    assert rows(app, CaseDecision) == [] and accounts_of(app, people[1]) == []


def test_reject_tells_the_citizen(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "op1")
    claim(client, case_id)
    assert decide(client, case_id, "reject", "face_not_card_holder").status_code == 302
    case = load(app, case_id)
    assert case.state == "rejected" and case.reason_codes == ["officer_rejected"]
    assert accounts_of(app, people[1]) == []
    with app.app_context():
        view = service.status_view(db.session.get(Case, case_id), "en")
    assert view["next"] == "contact" and "An officer checked" in view["reasons"][0]["message"]


def test_double_submit_decides_once(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "op1")
    claim(client, case_id)
    token = page_token(client, case_id)
    form = {"csrf_token": token, "kind": "approve", "reason_code": "evidence_consistent"}
    first = client.post(f"/ops/cases/{case_id}/decide", data=form)
    second = client.post(f"/ops/cases/{case_id}/decide", data=form)
    assert (first.status_code, second.status_code) == (302, 409)
    assert len(accounts_of(app, people[1])) == 1
    assert len(rows(app, CaseDecision, case_id=case_id)) == 1
    # A stale copy of the case (read before the decision) loses the compare-and-set.
    with app.app_context():
        stale = Case(id=case_id, state="needs_review")  # what a slower request still saw
        won = cases.claim_transition(stale, cases.REJECTED, actor="op1")
        db.session.rollback()
    assert won is False and case_state(app, case_id) == "approved"


def test_decisions_require_the_csrf_token(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "sup1")
    response = client.post(f"/ops/cases/{case_id}/decide",
                           data={"kind": "reject", "reason_code": "other"})
    assert response.status_code == 400
    assert case_state(app, case_id) == "needs_review" and rows(app, CaseDecision) == []


def test_reason_codes_come_from_the_fixed_list(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "sup1")
    response = decide(client, case_id, "reject", "because I said so")
    assert response.status_code == 400 and "Choose a reason" in response.text
    assert case_state(app, case_id) == "needs_review"


def _citizen_recaptures(app, case_id, token, citizen):
    """The citizen's browser: status page, new photos, submit again (the real views)."""
    browser = app.test_client()
    with browser.session_transaction() as sess:
        sess["ekyc"] = {"case": case_id, "token": token}
        sess["lang"] = "en"
    status = browser.get("/onboarding/status")
    assert "Please take new photos" in status.text
    assert "new photos of both sides of your card" in status.text
    assert 'href="/onboarding/card/front">Take new photos' in status.text
    review = browser.get("/onboarding/review")
    assert review.status_code == 200 and "Send my application" not in review.text  # all gone
    for side, color in (("front", (40, 90, 160)), ("back", (10, 10, 10))):
        page = browser.get(f"/onboarding/card/{side}")
        assert page.status_code == 200
        sent = browser.post(f"/onboarding/card/{side}", data={
            "csrf_token": csrf_token(page.text), "photo": (_file(photo(color=color)), "c.jpg")},
            content_type="multipart/form-data")
        assert sent.status_code == 302, sent.text
    with app.app_context():
        case = service.open_case(case_id, token)
        challenge = service.new_challenge(case)
        service.add_selfie_frames(case, challenge["nonce"], selfie_frames(4),
                                  [i * 400 for i in range(4)])
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizen))
    page = browser.get("/onboarding/review")
    assert "Send my application" in page.text
    sent = browser.post("/onboarding/submit", data={"csrf_token": csrf_token(page.text)})
    assert sent.status_code == 302


def _file(data: bytes):
    import io

    return io.BytesIO(data)


def test_recapture_lets_the_citizen_take_new_photos_and_the_checks_start_over(world):
    app, _ids, people = world
    case_id, token = captured_case(app)
    app.extensions["ekyc.reader"] = FakeReader(reading_for(
        people[1], findings=(("printed_name_mismatch", "review"),)))
    with app.app_context():
        service.submit(service.open_case(case_id, token))
        # The case has waited in review longer than the time a citizen has to capture.
        case = db.session.get(Case, case_id)
        case.created_at -= dt.timedelta(days=3)
        db.session.commit()
    assert case_state(app, case_id) == "needs_review"
    client = console(app, "op1")
    claim(client, case_id)
    assert decide(client, case_id, "recapture", "card_photo_unusable").status_code == 302
    case = load(app, case_id)
    assert case.state == "capturing" and case.reason_codes == ["recapture_requested"]
    assert case.review_since is None and case.reading_encrypted is None
    assert all(m.deleted_at is not None for m in case.media)  # the old photos are gone
    assert case.events[-1].actor == "op1"
    _citizen_recaptures(app, case_id, token, people[1])
    case = load(app, case_id)
    # The policy ran again from the first check on the new photos: a clean case is approved.
    assert case.state == "approved", case.reason_codes
    assert [c.name for c in case.checks].count("document_read") == 2
    assert cases.history(case)[-4:] == [("needs_review", "capturing"), ("capturing", "submitted"),
                                        ("submitted", "processing"), ("processing", "approved")]
    assert len(accounts_of(app, people[1])) == 1


def _override_requested(app, people, who="op1", citizen=1):
    case_id = pipeline_case(app, people[citizen], findings=REJECT)
    assert case_state(app, case_id) == "rejected"
    client = console(app, who)
    assert claim(client, case_id).status_code == 302
    response = decide(client, case_id, "approve", "register_record_outdated")
    assert response.status_code == 302
    [row] = rows(app, CaseDecision, case_id=case_id)
    assert (row.kind, row.status) == ("override", "pending")
    assert case_state(app, case_id) == "rejected" and accounts_of(app, people[citizen]) == []
    return case_id, row.id


def _override(client, case_id, decision_id, action):
    return client.post(f"/ops/overrides/{decision_id}", data={
        "csrf_token": page_token(client, case_id), "action": action})


def test_an_operator_never_confirms_their_own_override(world):
    app, _ids, people = world
    case_id, decision_id = _override_requested(app, people, "op1")
    client = console(app, "op1")
    page = client.get("/ops/overrides")
    assert page.status_code == 200 and 'value="confirm"' not in page.text
    assert _override(client, case_id, decision_id, "confirm").status_code == 403
    # Nor can anyone decide the case again while the override waits.
    assert decide(console(app, "sup1"), case_id, "approve", "other").status_code == 409
    assert case_state(app, case_id) == "rejected"
    assert rows(app, CaseDecision, id=decision_id)[0].status == "pending"


def test_a_supervisor_never_confirms_their_own_override_another_does(world):
    app, ids, people = world
    case_id, decision_id = _override_requested(app, people, "sup1")
    own = _override(console(app, "sup1"), case_id, decision_id, "confirm")
    assert own.status_code == 403 and "another supervisor" in own.text
    assert case_state(app, case_id) == "rejected" and accounts_of(app, people[1]) == []
    other = _override(console(app, "sup2"), case_id, decision_id, "confirm")
    assert other.status_code == 302
    case = load(app, case_id)
    assert case.state == "approved"
    [account] = accounts_of(app, people[1])
    assert account.id == case.account_id and account.status == "pending_activation"
    [row] = rows(app, CaseDecision, id=decision_id)
    assert (row.status, row.confirmed_by) == ("confirmed", ids["sup2"])
    assert ("rejected", "approved") in cases.history(case)
    assert case.events[-1].actor == "sup2"
    # The pipeline stopped before the register: the confirmation asked it, and recorded it.
    assert {"register_lookup", "register_fields_match"} <= {c.name for c in case.checks}
    events = [e.event for e in rows(app, AuditEvent)]
    assert "ops.override_requested" in events and "ops.override_confirmed" in events
    # Confirming twice does nothing more.
    again = _override(console(app, "sup2"), case_id, decision_id, "confirm")
    assert again.status_code == 409 and len(accounts_of(app, people[1])) == 1


def test_a_refused_override_leaves_the_case_rejected(world):
    app, ids, people = world
    case_id, decision_id = _override_requested(app, people, "op2")
    assert _override(console(app, "sup1"), case_id, decision_id, "refuse").status_code == 302
    assert case_state(app, case_id) == "rejected" and accounts_of(app, people[1]) == []
    [row] = rows(app, CaseDecision, id=decision_id)
    assert (row.status, row.confirmed_by) == ("refused", ids["sup1"])
    assert "ops.override_refused" in [e.event for e in rows(app, AuditEvent)]
    case = load(app, case_id)
    assert all(m.expires_at is not None for m in case.media if m.deleted_at is None)


def test_an_operator_cannot_reach_the_override_confirmation(world):
    app, _ids, people = world
    case_id, decision_id = _override_requested(app, people, "sup1")
    response = _override(console(app, "op2"), case_id, decision_id, "confirm")
    assert response.status_code == 403
    assert case_state(app, case_id) == "rejected"


def test_the_counter_operator_does_not_decide_their_own_counter_case(world):
    app, ids, people = world
    case_id = pipeline_case(app, people[1])
    with app.app_context():
        db.session.execute(db.update(Case).where(Case.id == case_id).values(
            channel="counter", counter_operator_id=ids["op1"]))
        db.session.commit()
    client = console(app, "op1")
    assert claim(client, case_id).status_code == 409
    assert decide(client, case_id, "approve", "evidence_consistent").status_code in (403, 409)
    assert case_state(app, case_id) == "needs_review"
