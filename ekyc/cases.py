"""The case state machine: which state may follow which, and the history of every transition.

    created ──> capturing ──> submitted ──> processing ──> approved
        └───────────────────────┘   ▲          │ ├──────> rejected ──> approved (override)
               ▲                    │          │ ├──────> needs_review ──> approved | rejected
               │                    │          │ └──────> waiting_register ──> processing
               │                    └──────────┘ (a worker's run is handed back)
               └─────── needs_review (recapture: an operator asks for new photos)

`waiting_register`: the register did not answer (down, slow, circuit open); the case is retried
with back-off and is never approved without a register answer. `needs_review`: an operator
decides in the console (`ekyc.review.decisions`): approve, reject, or recapture (back to
`capturing`, the citizen takes new photos and submits again). `rejected -> approved` is an
override and happens ONLY through `ekyc.review.decisions.confirm_override`, after a supervisor
other than its author confirmed it (four eyes); nothing else may take it. A state change
anywhere else is a bug and raises `IllegalTransition`; every change is recorded as a
`CaseEvent`. `Case.review_since` is set when a case enters `needs_review` (the queue's order)
and cleared when it leaves; entering review also releases any previous assignee.
"""

from __future__ import annotations

from idp.extensions import db

from .models import Case, CaseEvent, utcnow

CREATED = "created"
CAPTURING = "capturing"
SUBMITTED = "submitted"
PROCESSING = "processing"
WAITING_REGISTER = "waiting_register"
NEEDS_REVIEW = "needs_review"
APPROVED = "approved"
REJECTED = "rejected"

STATES = (CREATED, CAPTURING, SUBMITTED, PROCESSING, WAITING_REGISTER, NEEDS_REVIEW, APPROVED,
          REJECTED)
TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({CAPTURING, SUBMITTED, REJECTED}),
    CAPTURING: frozenset({SUBMITTED, REJECTED}),
    SUBMITTED: frozenset({PROCESSING}),
    PROCESSING: frozenset({APPROVED, REJECTED, NEEDS_REVIEW, WAITING_REGISTER, SUBMITTED}),
    WAITING_REGISTER: frozenset({PROCESSING}),
    NEEDS_REVIEW: frozenset({APPROVED, REJECTED, CAPTURING}),
    APPROVED: frozenset(),
    REJECTED: frozenset({APPROVED}),  # an override confirmed by a second person, only
}
EDITABLE = (CREATED, CAPTURING)  # the citizen may still add images
IN_FLIGHT = (SUBMITTED, PROCESSING, WAITING_REGISTER)  # the pipeline owns the case
DECIDED = (APPROVED, REJECTED)


class IllegalTransition(RuntimeError):
    """A state change the machine does not allow (a programming error, never user input)."""


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def _review_values(current: str, target: str, now) -> dict:
    """The review clock: set when a case enters review (with no assignee yet), cleared when it
    leaves."""
    if target == NEEDS_REVIEW:
        return {"review_since": now, "assignee_id": None, "assigned_at": None}
    if current == NEEDS_REVIEW:
        return {"review_since": None}
    return {}


def transition(case: Case, target: str, *, actor: str = "system",
               reason: str | None = None) -> CaseEvent:
    """Move `case` to `target` and record the event (the caller commits, in one transaction)."""
    if not can_move(case.state, target):
        raise IllegalTransition(f"case cannot go from {case.state} to {target}")
    event = CaseEvent(case_id=case.id, from_state=case.state, to_state=target, actor=actor[:64],
                      reason=reason[:64] if reason else None)
    case.events.append(event)
    case.state = target
    now = utcnow()
    case.updated_at = now
    if target == SUBMITTED and case.submitted_at is None:
        case.submitted_at = now
    if target in DECIDED:  # the media retention clock starts here
        case.decided_at = now
    for name, value in _review_values(event.from_state, target, now).items():
        setattr(case, name, value)
    return event


def claim_transition(case: Case, target: str, *, actor: str = "system",
                     reason: str | None = None) -> bool:
    """Compare-and-set: move `case` to `target` only if its state in the database is still
    the one this object shows (two requests racing, e.g. a double submit: one wins, the other
    gets False and must not write). Records the event; the caller commits, then refreshes."""
    if not can_move(case.state, target):
        raise IllegalTransition(f"case cannot go from {case.state} to {target}")
    now = utcnow()
    values = {"state": target, "updated_at": now}
    if target == SUBMITTED:
        values["submitted_at"] = now
    if target in DECIDED:
        values["decided_at"] = now
    values.update(_review_values(case.state, target, now))
    result = db.session.execute(
        db.update(Case).where(Case.id == case.id, Case.state == case.state).values(**values)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    db.session.add(CaseEvent(case_id=case.id, from_state=case.state, to_state=target,
                             actor=actor[:64], reason=reason[:64] if reason else None))
    return True


def history(case: Case) -> list[tuple[str, str]]:
    """(from, to) pairs in order: what a test or an operator reads."""
    return [(e.from_state, e.to_state) for e in case.events]
