"""The case state machine (ekyc/cases.py): allowed transitions only, each one in the history."""

from __future__ import annotations

import pytest

from ekyc import cases, policy, service
from ekyc.models import Case, CaseEvent
from idp.extensions import db

HAPPY = [("created", "capturing"), ("capturing", "submitted"), ("submitted", "processing"),
         ("processing", "waiting_register"), ("waiting_register", "processing"),
         ("processing", "approved")]


def _case(app) -> Case:
    case, _token = service.start_case(channel="api", locale="vi",
                                      consent_version=policy.CONSENT_VERSION)
    return case


def test_every_transition_is_recorded_in_order(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case = _case(app)
        for _, target in HAPPY:
            cases.transition(case, target, actor="test")
        db.session.commit()
        stored = db.session.scalars(db.select(CaseEvent).filter_by(case_id=case.id)
                                    .order_by(CaseEvent.id)).all()
        assert [(e.from_state, e.to_state) for e in stored] == HAPPY
        assert all(e.actor == "test" for e in stored)
        assert case.state == "approved" and case.decided_at is not None
        assert case.submitted_at is not None


@pytest.mark.parametrize("path", [
    ["approved"],  # straight from created
    ["capturing", "processing"],  # skipping submission
    ["capturing", "submitted", "processing", "approved", "rejected"],  # decided is final
    ["capturing", "submitted", "processing", "rejected", "capturing"],
    ["capturing", "submitted", "waiting_register"],  # only a worker run waits
    ["capturing", "submitted", "processing", "needs_review", "processing"],
])
def test_illegal_transitions_raise_and_change_nothing(ekyc_app, path):
    app = ekyc_app()
    with app.app_context():
        case = _case(app)
        *legal, illegal = path
        for target in legal:
            cases.transition(case, target)
        before = (case.state, len(case.events))
        with pytest.raises(cases.IllegalTransition):
            cases.transition(case, illegal)
        assert (case.state, len(case.events)) == before


def test_needs_review_is_decided_by_an_operator_later(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case = _case(app)
        for target in ("capturing", "submitted", "processing", "needs_review"):
            cases.transition(case, target)
        assert case.decided_at is None  # media are kept while an officer reviews
        cases.transition(case, "rejected", actor="operator:ops-demo", reason="register_mismatch")
        assert case.decided_at is not None
        assert cases.history(case)[-1] == ("needs_review", "rejected")
        assert case.events[-1].reason == "register_mismatch"


def test_table_covers_every_state():
    assert set(cases.TRANSITIONS) == set(cases.STATES)
    for targets in cases.TRANSITIONS.values():
        assert targets <= set(cases.STATES)
    assert not cases.TRANSITIONS["approved"]
    # A rejected case only ever becomes approved, by a confirmed override (four eyes).
    assert cases.TRANSITIONS["rejected"] == {"approved"}


def test_review_clock_and_recapture(ekyc_app):
    """Entering review starts `review_since` (and frees the case from any old assignee);
    leaving it, for new photos or a decision, stops it."""
    app = ekyc_app()
    with app.app_context():
        case = _case(app)
        for target in ("capturing", "submitted", "processing"):
            cases.transition(case, target)
        case.assignee_id = "someone"
        cases.transition(case, "needs_review")
        assert case.review_since is not None and case.assignee_id is None
        cases.transition(case, "capturing", actor="op1", reason="recapture_requested")
        assert case.review_since is None and case.decided_at is None
        for target in ("submitted", "processing", "needs_review"):
            cases.transition(case, target)
        db.session.commit()
        assert cases.claim_transition(case, "approved", actor="op1")
        db.session.commit()
        db.session.refresh(case)
        assert case.state == "approved" and case.review_since is None
        assert case.decided_at is not None


def test_a_stale_copy_cannot_rewind_a_case(ekyc_app):
    """Two requests submit the same case (a double click): the one holding a stale copy
    loses instead of writing its old state over the newer one."""
    app = ekyc_app()
    with app.app_context():
        case = _case(app)
        cases.transition(case, "capturing")
        db.session.commit()
        case_id = case.id
    with app.app_context():
        stale = db.session.get(Case, case_id)  # read before the other request moves on
        with app.app_context():
            fresh = db.session.get(Case, case_id)
            assert cases.claim_transition(fresh, "submitted", actor="citizen")
            db.session.commit()
            db.session.refresh(fresh)
            cases.transition(fresh, "processing")
            db.session.commit()
        assert stale.state == "capturing"
        assert not cases.claim_transition(stale, "submitted", actor="citizen")
        db.session.commit()
        db.session.refresh(stale)
        assert stale.state == "processing"
        events = db.session.scalars(db.select(CaseEvent).filter_by(case_id=case_id)).all()
        assert [(e.from_state, e.to_state) for e in events] == [
            ("created", "capturing"), ("capturing", "submitted"), ("submitted", "processing")]
