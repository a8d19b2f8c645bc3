"""The review queue (`ops.queue`): cases in `needs_review`, oldest first, with filters by reason,
age, province and assignee; a view of rejected cases for overrides; claim and assign.

One indexed query for the page (50 rows) and one for the count; the assignees' names in one
more query. Claims are compare-and-set (`decisions.claim`).
"""

from __future__ import annotations

import datetime as dt
import math

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, cast

from ekyc import cases
from ekyc.models import Case, CaseDecision, utcnow
from idp.extensions import db
from idp.models import Operator

from . import auth, bp, decisions, labels

PAGE_SIZE = 50
AGES = {"1d": (dt.timedelta(days=1), _l("More than 1 day")),
        "3d": (dt.timedelta(days=3), _l("More than 3 days")),
        "7d": (dt.timedelta(days=7), _l("More than 7 days"))}
ASSIGNEES = {"any": _l("Anyone"), "mine": _l("Mine"), "unassigned": _l("Unassigned")}
VIEWS = {"review": _l("Needs review"), "rejected": _l("Rejected (for overrides)")}


def _filters() -> dict:
    args = request.args
    province = args.get("province", "").strip()
    return {
        "view": args.get("view") if args.get("view") in VIEWS else "review",
        "reason": args.get("reason") if args.get("reason") in labels.REASON_LABELS else "",
        "age": args.get("age") if args.get("age") in AGES else "",
        "province": province if len(province) == 3 and province.isdigit() else "",
        "assignee": args.get("assignee") if args.get("assignee") in ASSIGNEES else "any",
    }


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


def queue_query(f: dict, operator_id: str | None):
    """The filtered query (without order and paging)."""
    query = db.select(Case)
    if f["view"] == "rejected":
        query = query.where(Case.state == cases.REJECTED, Case.media_purged_at.is_(None))
    else:
        query = query.where(Case.state == cases.NEEDS_REVIEW)
    if f["reason"]:
        # reason_codes is a JSON list; its text holds each code in double quotes.
        query = query.where(cast(Case.reason_codes, String).like(f'%"{f["reason"]}"%'))
    if f["age"]:
        since = utcnow() - AGES[f["age"]][0]
        column = Case.decided_at if f["view"] == "rejected" else Case.review_since
        query = query.where(column < since)
    if f["province"]:
        query = query.where(Case.province == f["province"])
    if f["assignee"] == "mine":
        query = query.where(Case.assignee_id == operator_id)
    elif f["assignee"] == "unassigned":
        query = query.where(Case.assignee_id.is_(None))
    return query


def _age(since: dt.datetime | None, now: dt.datetime) -> str:
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return _("%(n)s min", n=minutes)
    if minutes < 48 * 60:
        return _("%(n)s h", n=minutes // 60)
    return _("%(n)s days", n=minutes // (24 * 60))


@bp.get("/queue")
@auth.require()
def queue():
    op = auth.current_operator()
    f = _filters()
    page = _page()
    base = queue_query(f, op.id)
    total = db.session.scalar(db.select(db.func.count()).select_from(base.subquery()))
    if f["view"] == "rejected":
        order = (Case.decided_at.desc(), Case.id)
    else:
        order = (Case.review_since.asc(), Case.id)
    rows = db.session.scalars(base.order_by(*order).limit(PAGE_SIZE)
                              .offset((page - 1) * PAGE_SIZE)).all()
    ids = {c.assignee_id for c in rows if c.assignee_id}
    names = dict(db.session.execute(db.select(Operator.id, Operator.username)
                                    .where(Operator.id.in_(ids))).all()) if ids else {}
    pending = set(db.session.scalars(db.select(CaseDecision.case_id).where(
        CaseDecision.case_id.in_([c.id for c in rows]),
        CaseDecision.status == decisions.PENDING))) if rows else set()
    now = utcnow()
    items = [{
        "case": c, "ref": c.id.replace("-", "")[:8].upper(),
        "age": _age(c.decided_at if f["view"] == "rejected" else c.review_since, now),
        "reasons": [labels.reason(code) for code in c.reason_codes or []],
        "channel": labels.label(labels.CHANNEL_LABELS, c.channel),
        "assignee": names.get(c.assignee_id, ""), "mine": c.assignee_id == op.id,
        "claimable": decisions.may_claim(c, op) and c.id not in pending,
        "pending": c.id in pending,
    } for c in rows]
    assignable = []
    if op.role == "supervisor":
        assignable = db.session.execute(
            db.select(Operator.id, Operator.username).where(
                Operator.active.is_(True), Operator.role.in_(decisions.DECIDERS))
            .order_by(Operator.username)).all()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    args = {k: v for k, v in f.items() if v and not (k == "assignee" and v == "any")}
    return render_template(
        "ops/queue.html", items=items, total=total, page=page, pages=pages, filters=f,
        args=args, ages=AGES, assignees=ASSIGNEES, views=VIEWS, op=op, assignable=assignable,
        reasons=sorted(labels.REASON_LABELS.items(), key=lambda kv: str(kv[1])),
        can_claim=op.role in decisions.DECIDERS, can_assign=op.role == "supervisor")


def _case_or_404(case_id: str) -> Case:
    case = db.session.get(Case, case_id) if len(case_id) <= 36 else None
    if case is None:
        abort(404)
    return case


def _back(case: Case):
    target = request.form.get("next", "")
    if target.startswith("/ops/") and not target.startswith("//"):
        return redirect(target)
    return redirect(url_for("ops.case", case_id=case.id, purpose="review"))


@bp.post("/cases/<case_id>/claim")
@auth.require(*auth.ACTING_ROLES)
def claim(case_id):
    case = _case_or_404(case_id)
    try:
        decisions.claim(case, auth.current_operator())
    except decisions.DecisionError as exc:
        return auth.error_page(exc.status, str(exc.message))
    return _back(case)


@bp.post("/cases/<case_id>/assign")
@auth.require("supervisor")
def assign(case_id):
    case = _case_or_404(case_id)
    try:
        decisions.assign(case, auth.current_operator(), request.form.get("assignee", ""))
    except decisions.DecisionError as exc:
        return auth.error_page(exc.status, str(exc.message))
    return _back(case)
