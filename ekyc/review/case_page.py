"""The case page (`ops.case`) and its images (`ops.case_media`).

Everything an operator needs to decide, side by side: the card and the selfie frames, the faces
with their distance and the policy's thresholds, the fields read from the QR code, the MRZ and
the printed text next to the register's verdicts (every disagreement highlighted), liveness,
duplicate candidates with their faces, every check, the history and the console decisions.

Privacy: a view needs a purpose (`PURPOSES`) and is logged with it (`ops.case_viewed`); each
image served is logged (`ops.media_viewed`) and never cached. Speed: a handful of indexed
queries (no N+1), no image decoding (the page links to the stored images; CSS scales them).
"""

from __future__ import annotations

import json
from functools import lru_cache

from flask import Response, abort, render_template, request
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import selectinload

from ekyc import cases, media, pipeline, service
from ekyc.models import Case, CaseDecision, MediaObject
from idp import audit
from idp.extensions import db
from idp.models import Operator

from . import auth, bp, decisions, labels

PURPOSES = auth.PURPOSES
FIELDS = ("national_id", "full_name", "date_of_birth", "sex", "residence", "card_issue_date",
          "expiry_date")
# Where each field sits in a reading: (qr payload key, MRZ field, printed field).
SOURCES = {
    "national_id": ("national_id", "national_id", "national_id"),
    "full_name": ("full_name", None, "full_name"),
    "date_of_birth": ("birth", "birth_date", "date_of_birth"),
    "sex": ("sex", "sex", "sex"),
    "residence": ("address", None, "place_of_residence"),
    "card_issue_date": ("issue_date", None, "date_of_issue"),
    "expiry_date": (None, "expiry_date", "date_of_expiry"),
}


def viewable(case: Case | None) -> bool:
    """A case an operator may open: submitted at least once, or run at a counter (an
    application the citizen is still capturing for the first time is theirs alone)."""
    return case is not None and (case.submitted_at is not None or case.channel == "counter")


def _normal(field: str, value) -> str | None:
    if value in (None, ""):
        return None
    if field in ("date_of_birth", "card_issue_date", "expiry_date"):
        return pipeline._iso(value) or str(value)
    if field == "sex":
        return pipeline._sex(value) or str(value)
    text = pipeline._text(str(value))
    return text.casefold() if text else None


def field_rows(reading: dict, verdicts: dict) -> list[dict]:
    """One row per field: the value of each source, the register's verdict, and whether
    anything disagrees (sources with each other, or the register with the card)."""
    qr = reading.get("qr") or {}
    qr = (qr.get("payload") or {}) if isinstance(qr, dict) else {}
    mrz_all = reading.get("mrz") or {}
    mrz = (mrz_all.get("fields") or {}) if isinstance(mrz_all, dict) else {}
    printed = reading.get("printed") or {}
    chosen, sources = pipeline.identity(reading) if reading else ({}, {})
    rows = []
    for name in FIELDS:
        q, m, p = SOURCES[name]
        values = {"qr": qr.get(q) if q else None, "mrz": mrz.get(m) if m else None,
                  "printed": printed.get(p) if p else None}
        if name == "national_id" and not any(values.values()):
            values["qr"] = reading.get("national_id")
        verdict = verdicts.get(name)
        if not any(values.values()) and verdict is None:
            continue
        normal = {k: _normal(name, v) for k, v in values.items()}
        disagree = len({v for v in normal.values() if v}) > 1
        rows.append({"name": name, "label": labels.label(labels.FIELD_LABELS, name),
                     "values": values, "verdict": verdict, "source": sources.get(name),
                     "disagree": disagree, "mismatch": disagree or verdict == "mismatch",
                     "chosen": chosen.get(name)})
    return rows


@lru_cache(maxsize=1)
def policy_thresholds() -> dict:
    """The face model's calibrated thresholds as shipped (when a check did not record them)."""
    from ekyc.face.thresholds import DEFAULT_PATH

    try:
        data = json.loads(DEFAULT_PATH.read_text())
        return {"strict": data.get("strict"), "loose": data.get("loose")}
    except (OSError, ValueError):
        return {}


def _faces(checks: dict) -> dict:
    row = checks.get("face_match")
    detail = (row.detail or {}) if row else {}
    shipped = policy_thresholds()
    return {"check": row, "distance_card": detail.get("distance_card", row.score if row else None),
            "distance_register": detail.get("distance_register"),
            "strict": detail.get("strict") or (row.threshold if row else None) or
            shipped.get("strict"),
            "loose": detail.get("loose") or shipped.get("loose"),
            "outcome": detail.get("would_be") or detail.get("outcome"),
            "frames_used": detail.get("frames_used")}


def _duplicates(checks: dict) -> list[dict]:
    row = checks.get("duplicate")
    found = ((row.detail or {}).get("candidates") or []) if row else []
    ids = [c.get("case_id") for c in found if c.get("case_id")]
    faces = {}
    if ids:
        for obj in db.session.scalars(db.select(MediaObject).where(
                MediaObject.case_id.in_(ids), MediaObject.deleted_at.is_(None),
                db.or_(MediaObject.kind == "portrait", MediaObject.kind == "selfie_0"))):
            if obj.kind == "portrait" or obj.case_id not in faces:
                faces[obj.case_id] = obj
    return [{"case_id": c.get("case_id"), "account_id": c.get("account_id"),
             "distance": c.get("distance"), "face": faces.get(c.get("case_id"))} for c in found]


def _media(case: Case) -> dict:
    latest: dict[str, MediaObject] = {}
    for obj in case.media:  # ordered by creation: the last of a kind is the current one
        if obj.kind in ("front", "back", "portrait"):
            latest[obj.kind] = obj
    selfies = sorted((m for m in case.media if m.kind.startswith("selfie_") and
                      m.deleted_at is None), key=lambda m: int(m.kind.split("_")[1]))
    return {"front": latest.get("front"), "back": latest.get("back"),
            "portrait": latest.get("portrait"), "selfies": selfies,
            "any_deleted": any(m.deleted_at for m in case.media),
            "purged": case.media_purged_at is not None}


def _load(case_id: str) -> Case | None:
    if len(case_id) > 36:
        return None
    return db.session.scalar(
        db.select(Case).where(Case.id == case_id)
        .options(selectinload(Case.checks), selectinload(Case.events), selectinload(Case.media)))


@bp.get("/cases/<case_id>")
@auth.require()
def case(case_id):
    op = auth.current_operator()
    row = _load(case_id)
    if not viewable(row):
        abort(404)
    purpose = request.args.get("purpose", "")
    ref = row.id.replace("-", "")[:8].upper()
    if purpose not in PURPOSES:
        return render_template("ops/_case_purpose.html", case=row, ref=ref, purposes=PURPOSES)
    audit.record("ops.case_viewed", actor=op.username, case_id=row.id, purpose=purpose)
    finals = pipeline.final_results(row)
    latest = {}
    for check in row.checks:
        if check.final and check.name in finals:
            latest[check.name] = check
    reading = decisions.reading_of(row)
    verdicts_check = latest.get("register_fields_match")
    verdicts = dict(((verdicts_check.detail or {}).get("fields") or {}) if verdicts_check
                    else {})
    lookup = latest.get("register_lookup")
    if lookup is not None and lookup.outcome == "pass":
        verdicts.setdefault("national_id", "found")  # the register knows the number
    rows = db.session.scalars(db.select(CaseDecision).where(CaseDecision.case_id == row.id)
                              .order_by(CaseDecision.at, CaseDecision.id)).all()
    pending = next((d for d in rows if d.status == decisions.PENDING), None)
    people = {d.operator_id for d in rows} | {d.confirmed_by for d in rows if d.confirmed_by}
    people |= {row.assignee_id} if row.assignee_id else set()
    names = dict(db.session.execute(db.select(Operator.id, Operator.username)
                                    .where(Operator.id.in_(people))).all()) if people else {}
    history = [{"decision": d, "note": decisions.note_of(d),
                "by": names.get(d.operator_id, "?"), "confirmer": names.get(d.confirmed_by, "")}
               for d in rows]
    liveness = latest.get("liveness")
    assignable = []
    if op.role == "supervisor" and row.state in (cases.NEEDS_REVIEW, cases.REJECTED):
        assignable = db.session.execute(
            db.select(Operator.id, Operator.username).where(
                Operator.active.is_(True), Operator.role.in_(decisions.DECIDERS))
            .order_by(Operator.username)).all()
    return render_template(
        "ops/case.html", case=row, ref=ref, purpose=purpose, purposes=PURPOSES, op=op,
        fields=field_rows(reading, verdicts), findings=reading.get("findings") or [],
        faces=_faces(latest), liveness=liveness,
        liveness_detail=(liveness.detail or {}) if liveness else {},
        actions=[service.CHALLENGE_ACTIONS.get(a, a)
                 for a in ((liveness.detail or {}).get("actions") or [] if liveness else [])],
        duplicates=_duplicates(latest), checks=row.checks, events=row.events,
        decisions=history, pending=pending, media=_media(row),
        pending_by=names.get(pending.operator_id, "?") if pending else "",
        assignee=names.get(row.assignee_id, ""),
        allowed=decisions.allowed(row, op, pending),
        may_claim=decisions.may_claim(row, op) and pending is None,
        may_confirm=op.role == "supervisor" and pending is not None and
        pending.operator_id != op.id and row.counter_operator_id != op.id,
        assignable=assignable, reasons=decisions.REASONS, kinds=decisions.KIND_LABELS,
        status_labels=decisions.STATUS_LABELS, labels=labels, note_max=decisions.NOTE_MAX)


@bp.get("/cases/<case_id>/media/<media_id>")
@auth.require()
def case_media(case_id, media_id):
    op = auth.current_operator()
    row = db.session.get(Case, case_id) if len(case_id) <= 36 else None
    obj = db.session.get(MediaObject, media_id) if len(media_id) <= 36 else None
    if not viewable(row) or obj is None or obj.case_id != row.id:
        abort(404)
    if obj.deleted_at is not None:
        return auth.error_page(410, str(_l("Deleted under the retention policy.")))
    try:
        data = media.load(obj)
    except media.MediaError:
        return auth.error_page(410, str(_l("This image cannot be read.")))
    audit.record("ops.media_viewed", actor=op.username, case_id=row.id, kind=obj.kind)
    response = Response(data, mimetype=obj.content_type)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


from . import decision_views  # noqa: F401  (ops.decide, ops.overrides, ops.override_decide)
