"""Routes of the console decisions (`ekyc.review.decisions` holds the rules): `ops.decide` on a
case, the pending overrides (`ops.overrides`) and their confirmation or refusal by a second
supervisor (`ops.override_decide`)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ekyc.models import Case, CaseDecision
from idp.extensions import db
from idp.models import Operator

from . import auth, bp, decisions, labels


def _to_case(case_id: str, purpose: str = "review"):
    return redirect(url_for("ops.case", case_id=case_id, purpose=purpose))


@bp.post("/cases/<case_id>/decide")
@auth.require(*auth.ACTING_ROLES)
def decide(case_id):
    case = db.session.get(Case, case_id) if len(case_id) <= 36 else None
    if case is None:
        abort(404)
    try:
        row = decisions.decide(case, auth.current_operator(), request.form.get("kind", ""),
                               request.form.get("reason_code", ""), request.form.get("note"))
    except decisions.DecisionError as exc:
        return auth.error_page(exc.status, str(exc.message))
    flash(_("Override recorded: it waits for a supervisor.") if row.status == decisions.PENDING
          else _("Decision recorded."))
    return _to_case(case_id)


@bp.get("/overrides")
@auth.require()
def overrides():
    op = auth.current_operator()
    rows = db.session.scalars(db.select(CaseDecision).where(
        CaseDecision.kind == decisions.OVERRIDE, CaseDecision.status == decisions.PENDING)
        .order_by(CaseDecision.at, CaseDecision.id).limit(200)).all()
    recent = db.session.scalars(db.select(CaseDecision).where(
        CaseDecision.kind == decisions.OVERRIDE, CaseDecision.status != decisions.PENDING)
        .order_by(CaseDecision.confirmed_at.desc(), CaseDecision.id.desc()).limit(20)).all()
    people = {r.operator_id for r in [*rows, *recent]} | \
        {r.confirmed_by for r in recent if r.confirmed_by}
    names = dict(db.session.execute(db.select(Operator.id, Operator.username)
                                    .where(Operator.id.in_(people))).all()) if people else {}
    ids = {r.case_id for r in [*rows, *recent]}
    states = dict(db.session.execute(db.select(Case.id, Case.state)
                                     .where(Case.id.in_(ids))).all()) if ids else {}
    return render_template(
        "ops/overrides.html", op=op, pending=rows, recent=recent, names=names, states=states,
        labels=labels, reasons=decisions.REASONS, status_labels=decisions.STATUS_LABELS,
        can_decide=op.role == "supervisor")


@bp.post("/overrides/<int:decision_id>")
@auth.require("supervisor")
def override_decide(decision_id):
    op = auth.current_operator()
    action = request.form.get("action", "")
    try:
        if action == "confirm":
            row = decisions.confirm_override(decision_id, op)
            flash(_("Override confirmed: the case is approved and the account issued."))
        elif action == "refuse":
            row = decisions.refuse_override(decision_id, op)
            flash(_("Override refused: the case keeps its decision."))
        else:
            return auth.error_page(400, _("Choose to confirm or to refuse."))
    except decisions.DecisionError as exc:
        return auth.error_page(exc.status, str(exc.message))
    if request.form.get("next") == "case":
        return _to_case(row.case_id, "supervision")
    return redirect(url_for("ops.overrides"))
