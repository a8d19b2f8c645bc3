"""Console decisions on eKYC cases: claim and assign, approve / reject / recapture, overrides
under four eyes.

- A case in `needs_review` is decided by the operator who holds it (claimed or assigned) or by
  a supervisor: approve (the account is issued as the pipeline would, `issuance.issue_account`
  plus face enrolment), reject, or recapture (back to `capturing`: the citizen takes new
  photos and submits again; the old photos are deleted and the policy runs from scratch).
- An **override** is approving a case the pipeline rejected, or one with a final `fail` check.
  It is recorded as a `CaseDecision` with status `pending` and changes nothing until a
  supervisor who is not its author confirms it (the account is issued then) or refuses it.
  A case with a pending override takes no other decision.
- The operator who ran a counter onboarding never decides that case's review.

Every decision carries a reason code from a fixed list (`REASONS`, labels translated) and an
optional note stored encrypted (never logged). Races (double submits, two operators at once)
are settled by compare-and-set updates: one wins, the other gets `DecisionError("conflict")`.
"""

from __future__ import annotations

import json
import logging

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from ekyc import cases, issuance, media, pipeline, policy
from ekyc.models import Case, CaseCheck, CaseDecision, utcnow
from idp import audit, crypto
from idp.extensions import db
from idp.models import Operator

log = logging.getLogger(__name__)

APPROVE, REJECT, RECAPTURE, OVERRIDE = "approve", "reject", "recapture", "override"
KINDS = (APPROVE, REJECT, RECAPTURE)
PENDING, DONE, CONFIRMED, REFUSED = "pending", "done", "confirmed", "refused"
NOTE_MAX = 2000
DECIDERS = ("operator", "supervisor")

# The fixed reason codes of each kind of decision, with the label operators see.
REASONS: dict[str, dict[str, object]] = {
    APPROVE: {
        "evidence_consistent": _l("Card, faces and register checked: consistent"),
        "ocr_misread": _l("Printed text misread; QR code and register agree"),
        "register_record_outdated": _l("Difference explained by an outdated register record"),
        "service_unavailable_checked": _l("Automatic check unavailable; checked by hand"),
        "other": _l("Other (explain in the note)"),
    },
    REJECT: {
        "face_not_card_holder": _l("The selfie is not the card holder"),
        "document_forged": _l("The card looks forged or altered"),
        "register_mismatch_confirmed": _l("The card's details do not match the register"),
        "presentation_attack": _l("Photo of a photo, a screen or a mask"),
        "duplicate_identity": _l("The person already holds another identity"),
        "other": _l("Other (explain in the note)"),
    },
    RECAPTURE: {
        "card_photo_unusable": _l("Card photos blurred, dark or cut off"),
        "selfie_unusable": _l("Selfie unusable (dark, blurred, face hidden)"),
        "wrong_document": _l("Not a chip ID card, or the wrong card"),
        "other": _l("Other (explain in the note)"),
    },
}
# An override approves: its reasons are the approval's.
REASONS[OVERRIDE] = REASONS[APPROVE]
KIND_LABELS = {APPROVE: _l("Approve"), REJECT: _l("Reject"), RECAPTURE: _l("Ask for new photos"),
               OVERRIDE: _l("Override (approve a rejected case)")}
STATUS_LABELS = {DONE: _l("done"), PENDING: _l("waiting for a supervisor"),
                 CONFIRMED: _l("confirmed"), REFUSED: _l("refused")}

MESSAGES = {
    "forbidden": _l("Your role may not do this."),
    "not_decidable": _l("This case cannot take this decision in its current state."),
    "not_holder": _l("Claim the case first: only the operator who holds it, or a supervisor, "
                     "may decide."),
    "counter_operator": _l("You ran the counter onboarding of this case: another operator "
                           "must decide it."),
    "pending_override": _l("This case has an override waiting for a supervisor."),
    "bad_reason": _l("Choose a reason from the list."),
    "note_too_long": _l("The note is too long."),
    "conflict": _l("Someone else changed this case at the same time. Reload the page and look "
                   "again."),
    "no_identity": _l("The card was not read: no account can be issued. Ask for new photos "
                      "instead."),
    "register_unavailable": _l("The population register is not answering: try again later."),
    "register_refused": _l("The population register does not confirm this ID number (unknown, "
                           "deceased or card revoked): no account can be issued."),
    "already_enrolled": _l("An account already exists for this ID number: this case cannot be "
                           "approved."),
    "own_override": _l("You requested this override: another supervisor must confirm it."),
    "not_pending": _l("This override was already decided."),
    "not_claimable": _l("This case cannot be claimed."),
    "already_claimed": _l("Another operator holds this case."),
    "bad_assignee": _l("Choose an active operator or supervisor."),
}


class DecisionError(Exception):
    """A decision the console refuses: `code` (see MESSAGES) and HTTP `status`."""

    def __init__(self, code: str, status: int = 409):
        super().__init__(code)
        self.code = code
        self.status = status

    @property
    def message(self):
        return MESSAGES.get(self.code, self.code)


def reason_label(kind: str, code: str):
    return REASONS.get(kind, {}).get(code, code)


# -- what a user may do -------------------------------------------------------------------------

def pending_override(case_id: str) -> CaseDecision | None:
    return db.session.scalar(db.select(CaseDecision).where(
        CaseDecision.case_id == case_id, CaseDecision.status == PENDING).limit(1))


def has_failed_check(case: Case) -> bool:
    return any(r.outcome == policy.FAIL for r in pipeline.final_results(case).values())


def allowed(case: Case, op: Operator, pending: CaseDecision | None = None) -> list[str]:
    """The decision kinds `op` may take on `case` now (for the page's forms; the service checks
    again on every request)."""
    if op is None or op.role not in DECIDERS or pending is not None:
        return []
    if case.counter_operator_id and case.counter_operator_id == op.id:
        return []
    if op.role != "supervisor" and case.assignee_id != op.id:
        return []
    if case.state == cases.NEEDS_REVIEW:
        return [OVERRIDE if has_failed_check(case) else APPROVE, REJECT, RECAPTURE]
    if case.state == cases.REJECTED and case.media_purged_at is None:
        return [OVERRIDE]
    return []


def may_claim(case: Case, op: Operator) -> bool:
    if op is None or op.role not in DECIDERS:
        return False
    if case.state not in (cases.NEEDS_REVIEW, cases.REJECTED) or case.assignee_id == op.id:
        return False
    if case.state == cases.REJECTED and case.media_purged_at is not None:
        return False  # nothing left to look at: no override possible
    if case.counter_operator_id and case.counter_operator_id == op.id:
        return False
    return case.assignee_id is None or op.role == "supervisor"


# -- claim and assign ---------------------------------------------------------------------------

def _lock(case: Case) -> Case:
    """Take the case row's write lock for this transaction and read it afresh: concurrent
    decisions on one case run one after the other."""
    db.session.execute(db.update(Case).where(Case.id == case.id)
                       .values(updated_at=Case.updated_at)
                       .execution_options(synchronize_session=False))
    return db.session.execute(db.select(Case).where(Case.id == case.id)
                              .execution_options(populate_existing=True)).scalar_one()


def claim(case: Case, op: Operator) -> None:
    """`op` takes the case: an unassigned one, or (a supervisor) any. Compare-and-set on the
    assignee the caller saw: of two operators claiming at once, one wins."""
    if op.role not in DECIDERS:
        raise DecisionError("forbidden", 403)
    if not may_claim(case, op):
        raise DecisionError("already_claimed" if case.assignee_id else "not_claimable")
    seen = case.assignee_id
    query = db.update(Case).where(Case.id == case.id,
                                  Case.state.in_((cases.NEEDS_REVIEW, cases.REJECTED)))
    query = query.where(Case.assignee_id.is_(None) if seen is None else Case.assignee_id == seen)
    won = db.session.execute(query.values(assignee_id=op.id, assigned_at=utcnow())
                             .execution_options(synchronize_session=False)).rowcount == 1
    if not won:
        db.session.rollback()
        raise DecisionError("already_claimed")
    audit.record("ops.case_claimed", actor=op.username, commit=False, case_id=case.id)
    db.session.commit()


def assign(case: Case, op: Operator, assignee_id: str) -> Operator:
    """A supervisor gives the case to an operator or supervisor (not its counter operator)."""
    if op.role != "supervisor":
        raise DecisionError("forbidden", 403)
    target = db.session.get(Operator, assignee_id or "")
    if target is None or not target.active or target.role not in DECIDERS or \
            target.id == case.counter_operator_id:
        raise DecisionError("bad_assignee", 400)
    result = db.session.execute(
        db.update(Case).where(Case.id == case.id,
                              Case.state.in_((cases.NEEDS_REVIEW, cases.REJECTED)))
        .values(assignee_id=target.id, assigned_at=utcnow())
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise DecisionError("not_claimable")
    audit.record("ops.case_assigned", actor=op.username, commit=False, case_id=case.id,
                 assignee=target.username)
    db.session.commit()
    return target


# -- decisions ----------------------------------------------------------------------------------

def _clean_input(kind: str, reason_code: str, note: str | None) -> str | None:
    if reason_code not in REASONS.get(kind, {}):
        raise DecisionError("bad_reason", 400)
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise DecisionError("note_too_long", 400)
    return crypto.encrypt(note) if note else None


def decide(case: Case, op: Operator, kind: str, reason_code: str,
           note: str | None = None) -> CaseDecision:
    """Take decision `kind` (approve | reject | recapture | override) on `case` as `op`.

    Approving a case with a failed check, or a rejected case, is an override: recorded pending
    (whatever `kind` the form said). Raises DecisionError; commits on success."""
    if op.role not in DECIDERS:
        raise DecisionError("forbidden", 403)
    if kind not in (*KINDS, OVERRIDE):
        raise DecisionError("not_decidable", 400)
    note_encrypted = _clean_input(kind, reason_code, note)
    case = _lock(case)
    allowed_now = allowed(case, op, pending_override(case.id))
    if kind == APPROVE and OVERRIDE in allowed_now:
        kind = OVERRIDE
    if kind not in allowed_now:
        db.session.rollback()
        raise _why_not(case, op)
    row = CaseDecision(case_id=case.id, kind=kind, reason_code=reason_code,
                       note_encrypted=note_encrypted, operator_id=op.id,
                       status=PENDING if kind == OVERRIDE else DONE, at=utcnow())
    if kind == OVERRIDE:
        if case.state == cases.REJECTED:
            media.set_retention(case, decided=False)  # kept while a supervisor looks
        db.session.add(row)
        db.session.flush()
        audit.record("ops.override_requested", actor=op.username, commit=False,
                     case_id=case.id, decision_id=row.id, reason_code=reason_code)
    else:
        {APPROVE: _approve, REJECT: _reject, RECAPTURE: _recapture}[kind](case, op, reason_code)
        db.session.add(row)
    audit.record("ops.decision", actor=op.username, commit=False, case_id=case.id, kind=kind,
                 reason_code=reason_code)
    _commit()
    return row


def _why_not(case: Case, op: Operator) -> DecisionError:
    if pending_override(case.id) is not None:
        return DecisionError("pending_override")
    if case.counter_operator_id and case.counter_operator_id == op.id:
        return DecisionError("counter_operator", 403)
    if case.state in (cases.NEEDS_REVIEW, cases.REJECTED) and op.role != "supervisor" and \
            case.assignee_id != op.id:
        return DecisionError("not_holder", 403)
    return DecisionError("not_decidable")


def _move(case: Case, target: str, actor: str, reason: str) -> None:
    if not cases.claim_transition(case, target, actor=actor, reason=reason):
        db.session.rollback()
        raise DecisionError("conflict")


def _commit() -> None:
    try:
        db.session.commit()
    except IntegrityError as exc:  # another case created the account in the meantime
        db.session.rollback()
        raise DecisionError("already_enrolled") from exc


def _issue(case: Case) -> None:
    """Issue the case's account as the pipeline does (and enrol the face when it would)."""
    evidence = pipeline.CaseEvidence(case)
    try:
        fields = evidence.identity_fields() if case.reading_encrypted else {}
    except (ValueError, RuntimeError):  # unreadable stored reading
        fields = {}
    if not fields.get("national_id") or not fields.get("full_name"):
        db.session.rollback()
        raise DecisionError("no_identity")
    verdicts = _register_checked(case, evidence).get("register_fields_match")
    register_fields = (verdicts.detail or {}).get("fields", {}) if verdicts else {}
    try:
        account = issuance.issue_account(case, fields, register_fields)
    except issuance.AlreadyEnrolled as exc:
        db.session.rollback()
        raise DecisionError("already_enrolled") from exc
    from ekyc import biometrics

    if current_app.extensions.get("ekyc.face_index") is biometrics.duplicate_face and \
            case.live_media("selfie"):
        try:
            biometrics.enroll(evidence, account.id)  # the approved face joins the 1:N index
        except Exception:
            log.warning("face enrolment failed for an approved case", exc_info=True)
    case.reason_codes = []
    case.review_since = None
    media.set_retention(case, decided=True)


def _register_checked(case: Case, evidence) -> dict:
    """Never an account without the register's answer: the register lookup must have passed
    and the fields been compared; what the pipeline did not get to (a case rejected before
    the register, or a register error) is asked now and recorded on the case. A field mismatch
    does not stop an officer's approval (people judged it); an unknown, dead or revoked number
    does."""
    from ekyc.register_client import RegisterUnavailable

    results = pipeline.final_results(case)
    for name in policy.REGISTER_CHECKS:
        prior = results.get(name)
        if prior is not None and (name != "register_lookup" or prior.outcome == policy.PASS):
            continue
        check = policy.CHECKS[policy.position(name)]
        try:
            result = check.run(evidence)
        except RegisterUnavailable as exc:
            db.session.rollback()
            raise DecisionError("register_unavailable", 503) from exc
        pipeline._record(case, check, result)
        results[name] = result
    if results["register_lookup"].outcome != policy.PASS:
        db.session.rollback()
        raise DecisionError("register_refused")
    return results


def _approve(case: Case, op: Operator, reason_code: str) -> None:
    _move(case, cases.APPROVED, op.username, reason_code)
    _issue(case)


def _reject(case: Case, op: Operator, reason_code: str) -> None:
    _move(case, cases.REJECTED, op.username, reason_code)
    case.reason_codes = ["officer_rejected"]
    case.review_since = None
    case.decided_at = utcnow()
    media.set_retention(case, decided=True)


def _recapture(case: Case, op: Operator, reason_code: str) -> None:
    """Back to capturing: the old photos go (the citizen takes all of them again), the policy
    starts over (`pipeline.RESTART_CHECK`), the capture time counts from now."""
    _move(case, cases.CAPTURING, op.username, "recapture_requested")
    now = utcnow()
    for obj in case.live_media():
        media.discard(obj, now)
    case.reading_encrypted = None
    case.reason_codes = ["recapture_requested"]
    case.review_since = None
    case.runs = 0
    case.attempts = 0
    case.checks.append(CaseCheck(case_id=case.id, name=pipeline.RESTART_CHECK, position=-1,
                                 outcome=policy.SKIPPED, version="console",
                                 reason_code="recapture_requested",
                                 detail={"reason": reason_code}))


# -- overrides ----------------------------------------------------------------------------------

def _pending(decision_id: int) -> CaseDecision:
    row = db.session.get(CaseDecision, decision_id)
    if row is None or row.kind != OVERRIDE:
        raise DecisionError("not_pending", 404)
    if row.status != PENDING:
        raise DecisionError("not_pending")
    return row


def _second_supervisor(decision_id: int, op: Operator) -> tuple[CaseDecision, Case]:
    """The pending override and its case (locked) for a supervisor who did not request it."""
    if op.role != "supervisor":
        raise DecisionError("forbidden", 403)
    row = _pending(decision_id)
    if row.operator_id == op.id:
        raise DecisionError("own_override", 403)
    return row, _lock(db.session.get(Case, row.case_id))


def confirm_override(decision_id: int, op: Operator) -> CaseDecision:
    """A supervisor other than its author confirms a pending override: the case is approved
    and the account issued, in one transaction."""
    row, case = _second_supervisor(decision_id, op)
    if case.counter_operator_id and case.counter_operator_id == op.id:
        db.session.rollback()
        raise DecisionError("counter_operator", 403)
    _settle(row, op, CONFIRMED)
    if case.state not in (cases.REJECTED, cases.NEEDS_REVIEW):
        db.session.rollback()
        raise DecisionError("not_decidable")
    _move(case, cases.APPROVED, op.username, row.reason_code)
    _issue(case)
    audit.record("ops.override_confirmed", actor=op.username, commit=False, case_id=case.id,
                 decision_id=row.id, reason_code=row.reason_code)
    _commit()
    return row


def refuse_override(decision_id: int, op: Operator) -> CaseDecision:
    """A supervisor other than its author refuses a pending override: the case stays as it
    was (a rejected case stays rejected; its media retention clock runs again)."""
    row, case = _second_supervisor(decision_id, op)
    _settle(row, op, REFUSED)
    if case.state == cases.REJECTED:
        media.set_retention(case, decided=True)
    audit.record("ops.override_refused", actor=op.username, commit=False, case_id=case.id,
                 decision_id=row.id)
    _commit()
    return row


def _settle(row: CaseDecision, op: Operator, status: str) -> None:
    """Compare-and-set the override from pending to `status`: of two supervisors at once, one
    wins."""
    result = db.session.execute(
        db.update(CaseDecision).where(CaseDecision.id == row.id,
                                      CaseDecision.status == PENDING,
                                      CaseDecision.operator_id != op.id)
        .values(status=status, confirmed_by=op.id, confirmed_at=utcnow())
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise DecisionError("not_pending")


def note_of(row: CaseDecision) -> str:
    """The decision's note, decrypted (for the case page only; never logged)."""
    if not row.note_encrypted:
        return ""
    try:
        return crypto.decrypt(row.note_encrypted)
    except Exception:  # noqa: BLE001
        return ""


def reading_of(case: Case) -> dict:
    """The stored card reading of a case, decrypted ({} when none or purged)."""
    if not case.reading_encrypted:
        return {}
    try:
        return json.loads(crypto.decrypt(case.reading_encrypted))
    except Exception:  # noqa: BLE001
        return {}
