"""The review queue (`ops.queue`): what it lists and in which order, its filters, claims (one
winner when two operators claim at once) and assignment by a supervisor."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from ekyc.models import Case
from ekyc.review import decisions
from idp.extensions import db
from idp.models import AuditEvent, Operator
from tests.ekyc.review.conftest import console_client as console
from tests.ekyc.review.conftest import pipeline_case
from tests.helpers import csrf_token

REJECT = (("qr_mrz_id_mismatch", "reject"),)


def listed(html: str) -> list[str]:
    return re.findall(r'<tr data-case="([^"]+)"', html)


def token(client) -> str:
    return csrf_token(client.get("/ops/logout").text)


def set_case(app, case_id, **values):
    with app.app_context():
        case = db.session.get(Case, case_id)
        for name, value in values.items():
            setattr(case, name, value)
        db.session.commit()


def test_the_queue_lists_review_cases_oldest_first(world):
    app, _ids, people = world
    newer = pipeline_case(app, people[1])
    older = pipeline_case(app, people[2])
    rejected = pipeline_case(app, people[3], findings=REJECT)
    with app.app_context():
        since = db.session.get(Case, newer).review_since
    set_case(app, older, review_since=since - dt.timedelta(hours=30))
    page = console(app, "op1").get("/ops/queue")
    assert page.status_code == 200
    assert listed(page.text) == [older, newer]  # oldest first; the rejected one is not here
    assert "Card details to check" in page.text  # the reason, as a label
    assert "30 h" in page.text  # time in queue
    assert "Cases found: 2" in page.text
    # The rejected cases (for overrides) are a view of their own.
    other = console(app, "op1").get("/ops/queue?view=rejected")
    assert listed(other.text) == [rejected]
    # Queue links open the case with the review purpose.
    assert f"/ops/cases/{older}?purpose=review" in page.text


def test_the_filters(world):
    app, _ids, people = world
    first = pipeline_case(app, people[1])
    second = pipeline_case(app, people[2], findings=(("printed_dob_mismatch", "review"),))
    with app.app_context():
        now = db.session.get(Case, first).review_since
    set_case(app, first, review_since=now - dt.timedelta(days=2), province="001",
             reason_codes=["document_needs_review", "liveness_no_timing"])
    set_case(app, second, province="079", reason_codes=["duplicate_face_suspected"])
    client = console(app, "op1")
    assert listed(client.get("/ops/queue?reason=liveness_no_timing").text) == [first]
    assert listed(client.get("/ops/queue?reason=duplicate_face_suspected").text) == [second]
    assert listed(client.get("/ops/queue?age=1d").text) == [first]
    assert listed(client.get("/ops/queue?age=3d").text) == []
    assert listed(client.get("/ops/queue?province=079").text) == [second]
    assert listed(client.get("/ops/queue?province=001&age=1d").text) == [first]
    # Assignee: mine / unassigned / anyone.
    assert client.post(f"/ops/cases/{second}/claim",
                       data={"csrf_token": token(client)}).status_code == 302
    assert listed(client.get("/ops/queue?assignee=mine").text) == [second]
    assert listed(client.get("/ops/queue?assignee=unassigned").text) == [first]
    assert listed(client.get("/ops/queue?assignee=any").text) == [first, second]
    assert listed(console(app, "op2").get("/ops/queue?assignee=mine").text) == []


def test_the_queue_pages_by_fifty(world):
    app, _ids, people = world
    template = pipeline_case(app, people[1])
    with app.app_context():
        base = db.session.get(Case, template)
        for i in range(55):
            db.session.add(Case(state="needs_review", token_hash="x" * 64,
                                consent_version="t", consent_text_hash="y" * 64,
                                review_since=base.review_since + dt.timedelta(minutes=i + 1),
                                submitted_at=base.submitted_at))
        db.session.commit()
    client = console(app, "aud1")
    first = client.get("/ops/queue")
    assert len(listed(first.text)) == 50 and listed(first.text)[0] == template
    assert "Page 1 of 2" in first.text
    second = client.get("/ops/queue?page=2")
    assert len(listed(second.text)) == 6


def test_two_operators_claiming_at_once_one_wins(world):
    app, ids, people = world
    case_id = pipeline_case(app, people[1])
    one, two = console(app, "op1"), console(app, "op2")
    first = one.post(f"/ops/cases/{case_id}/claim", data={"csrf_token": token(one)})
    second = two.post(f"/ops/cases/{case_id}/claim", data={"csrf_token": token(two)})
    assert first.status_code == 302 and second.status_code == 409
    assert "Another operator holds this case" in second.text
    with app.app_context():
        assert db.session.get(Case, case_id).assignee_id == ids["op1"]
        # Both read the case before either wrote: the compare-and-set lets one through.
        seen = Case(id=case_id, state="needs_review", assignee_id=None)
        op2 = db.session.get(Operator, ids["op2"])
        with pytest.raises(decisions.DecisionError):
            decisions.claim(seen, op2)
        assert db.session.get(Case, case_id).assignee_id == ids["op1"]
        claims = db.session.scalars(db.select(AuditEvent).filter_by(
            event="ops.case_claimed")).all()
        assert [e.actor for e in claims] == ["op1"]
    page = one.get("/ops/queue")
    assert "you" in page.text and "Claim" not in page.text.split("<tbody>")[1]


def test_a_supervisor_assigns_and_takes_over(world):
    app, ids, people = world
    case_id = pipeline_case(app, people[1])
    sup = console(app, "sup1")
    response = sup.post(f"/ops/cases/{case_id}/assign",
                        data={"csrf_token": token(sup), "assignee": ids["op2"]})
    assert response.status_code == 302
    assert listed(console(app, "op2").get("/ops/queue?assignee=mine").text) == [case_id]
    with app.app_context():
        [event] = db.session.scalars(db.select(AuditEvent).filter_by(
            event="ops.case_assigned")).all()
        assert event.actor == "sup1" and event.detail["assignee"] == "op2"
    # An auditor is no assignee; an operator may not assign.
    bad = sup.post(f"/ops/cases/{case_id}/assign",
                   data={"csrf_token": token(sup), "assignee": ids["aud1"]})
    assert bad.status_code == 400
    op = console(app, "op1")
    assert op.post(f"/ops/cases/{case_id}/assign",
                   data={"csrf_token": token(op), "assignee": ids["op1"]}).status_code == 403
    # A supervisor may claim a case someone else holds.
    assert sup.post(f"/ops/cases/{case_id}/claim",
                    data={"csrf_token": token(sup)}).status_code == 302
    with app.app_context():
        assert db.session.get(Case, case_id).assignee_id == ids["sup1"]


def test_auditors_read_the_queue_without_claiming(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "aud1")
    page = client.get("/ops/queue")
    assert listed(page.text) == [case_id] and "/claim" not in page.text
    response = client.post(f"/ops/cases/{case_id}/claim", data={"csrf_token": token(client)})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(Case, case_id).assignee_id is None


def test_the_queue_needs_a_console_session(world):
    app, _ids, _people = world
    response = app.test_client().get("/ops/queue")
    assert response.status_code == 302 and "/ops/login" in response.headers["Location"]
