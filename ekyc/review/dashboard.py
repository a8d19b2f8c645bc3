"""The dashboard (`ops.dashboard`, every console role): cases by state, approval and review rates,
the review backlog and its age, mean decision time, overall and by province.

Every figure comes from a handful of aggregate queries (GROUP BY, window functions for the
median), so the page costs the same with ten or ten million cases; charts are inline SVG
(`ekyc.review.charts`) with the data repeated in tables.

Definitions (for a period of the last N days, 30 by default):
- decided: cases approved or rejected in the period (`decided_at`);
- approval rate: approved / decided;
- reached an outcome: decided in the period, or sent to review in the period and still there;
- review rate: those of them that went to an operator (a `needs_review` step) / reached;
- mean decision time: `submitted_at` -> `decided_at` of the cases decided in the period;
- backlog: cases in `needs_review` now (any period), its age from `review_since`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import render_template, request
from flask_babel import format_percent, format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ekyc import cases
from ekyc.document.idnumber import PROVINCES
from ekyc.models import Case, CaseEvent, utcnow
from idp import audit
from idp.extensions import db

from . import bp
from .auth import actor, require
from .charts import Bar, bar_chart

PERIODS = (7, 30, 90, 365)  # days the period selector offers
DEFAULT_PERIOD = 30
PROVINCE_BARS = 10  # provinces shown in a chart (the table lists every one)

STATE_LABELS = {
    cases.CREATED: _l("Created"), cases.CAPTURING: _l("Capturing"),
    cases.SUBMITTED: _l("Submitted"), cases.PROCESSING: _l("Processing"),
    cases.WAITING_REGISTER: _l("Waiting for the register"),
    cases.NEEDS_REVIEW: _l("Needs review"), cases.APPROVED: _l("Approved"),
    cases.REJECTED: _l("Rejected"),
}


@dataclass
class Figures:
    """The dashboard's numbers for all cases or one province."""

    by_state: dict[str, int] = field(default_factory=dict)
    approved: int = 0
    rejected: int = 0
    reached: int = 0
    reviewed: int = 0
    decision_seconds: float = 0.0  # summed over `timed` cases
    timed: int = 0
    backlog: int = 0
    oldest: dt.datetime | None = None
    median: dt.datetime | None = None

    @property
    def decided(self) -> int:
        return self.approved + self.rejected

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def approval_rate(self) -> float | None:
        return self.approved / self.decided if self.decided else None

    @property
    def review_rate(self) -> float | None:
        return self.reviewed / self.reached if self.reached else None

    @property
    def mean_decision(self) -> dt.timedelta | None:
        return dt.timedelta(seconds=self.decision_seconds / self.timed) if self.timed else None


def _seconds_between(start, end):
    """SQL for `end - start` in seconds, in this database's dialect."""
    if db.session.get_bind().dialect.name == "postgresql":
        return db.extract("epoch", end - start)
    return (db.func.julianday(end) - db.func.julianday(start)) * 86400.0


def _review_start():
    return db.func.coalesce(Case.review_since, Case.updated_at)


def compute(days: int, now: dt.datetime) -> tuple[Figures, dict[str | None, Figures]]:
    """(figures of all cases, {province code: figures}) for the last `days` days."""
    since = now - dt.timedelta(days=days)
    total, provinces = Figures(), {}

    def of(code):
        return provinces.setdefault(code, Figures())

    for code, state, n in db.session.execute(
            db.select(Case.province, Case.state, db.func.count())
            .group_by(Case.province, Case.state)):
        of(code).by_state[state] = n
        total.by_state[state] = total.by_state.get(state, 0) + n

    # review_since is cleared when a case leaves review: its history says whether it went there
    # (IN, not a correlated EXISTS: the subquery is built once, ~2x faster over a year)
    went_to_review = Case.id.in_(db.select(CaseEvent.case_id)
                                 .where(CaseEvent.to_state == cases.NEEDS_REVIEW))
    reviewed = db.case((db.or_(Case.state == cases.NEEDS_REVIEW, went_to_review), 1), else_=0)
    timed = db.and_(Case.state.in_(cases.DECIDED), Case.submitted_at.is_not(None))
    seconds = db.case((timed, _seconds_between(Case.submitted_at, Case.decided_at)), else_=0)
    in_period = db.or_(db.and_(Case.state.in_(cases.DECIDED), Case.decided_at >= since),
                       db.and_(Case.state == cases.NEEDS_REVIEW, _review_start() >= since))
    for code, state, n, n_reviewed, n_seconds, n_timed in db.session.execute(
            db.select(Case.province, Case.state, db.func.count(), db.func.sum(reviewed),
                      db.func.sum(seconds), db.func.sum(db.case((timed, 1), else_=0)))
            .where(in_period).group_by(Case.province, Case.state)):
        for fig in (total, of(code)):
            if state == cases.APPROVED:
                fig.approved += n
            elif state == cases.REJECTED:
                fig.rejected += n
            fig.reached += n
            fig.reviewed += int(n_reviewed or 0)
            fig.decision_seconds += float(n_seconds or 0)
            fig.timed += int(n_timed or 0)

    waiting = Case.state == cases.NEEDS_REVIEW
    for code, n, oldest in db.session.execute(
            db.select(Case.province, db.func.count(), db.func.min(_review_start()))
            .where(waiting).group_by(Case.province)):
        of(code).backlog, of(code).oldest = n, oldest
        total.backlog += n
        total.oldest = oldest if total.oldest is None else min(total.oldest, oldest)
    for code, median in _medians(by_province=True):
        of(code).median = median
    total.median = next((m for _, m in _medians(by_province=False)), None)
    return total, provinces


def _medians(by_province: bool):
    """(province or None, median time the backlog entered review), with window functions."""
    start = _review_start()
    partition = [Case.province] if by_province else []
    sub = db.select(Case.province.label("province"), start.label("since"),
                    db.func.row_number().over(partition_by=partition, order_by=start)
                    .label("rn"),
                    db.func.count().over(partition_by=partition).label("n")) \
        .where(Case.state == cases.NEEDS_REVIEW).subquery()
    middle = db.and_(sub.c.rn * 2 >= sub.c.n, sub.c.rn * 2 <= sub.c.n + 2)  # 1 row, or 2 if even
    found: dict[str | None, list[dt.datetime]] = {}
    key = sub.c.province if by_province else db.literal(None)
    for code, since in db.session.execute(db.select(key, sub.c.since).where(middle)):
        found.setdefault(code, []).append(_as_datetime(since))
    for code, values in found.items():
        values.sort()
        yield code, values[0] + (values[-1] - values[0]) / 2


def _as_datetime(value) -> dt.datetime:
    if isinstance(value, str):  # SQLite returns a coalesce() of datetimes as text
        return dt.datetime.fromisoformat(value)
    return value


def province_name(code: str | None) -> str:
    if code is None:
        return _("Unknown")
    name = PROVINCES.get(code)
    return f"{name} ({code})" if name else code


def percent(value: float | None) -> str:
    return "–" if value is None else format_percent(value, "#,##0.0%")


def age(now: dt.datetime, since: dt.datetime | None) -> str:
    return "–" if since is None else duration(now - _as_datetime(since))


def duration(delta: dt.timedelta | None) -> str:
    if delta is None:
        return "–"
    return format_timedelta(max(delta, dt.timedelta(0)), threshold=1.5)


def _period() -> int:
    try:
        days = int(request.args.get("days", DEFAULT_PERIOD))
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


def _charts(total: Figures, rows: list[tuple[str | None, Figures]], days: int) -> dict:
    """{name: (title, svg)}: the page shows the title as the figure's caption."""
    table_note = _("The same figures are in the table below the chart.")
    states = [Bar(str(STATE_LABELS.get(s, s)), n, str(n))
              for s, n in sorted(total.by_state.items(), key=lambda kv: -kv[1])]
    by_backlog = sorted((r for r in rows if r[1].backlog), key=lambda r: -r[1].backlog)
    by_decided = sorted((r for r in rows if r[1].decided), key=lambda r: -r[1].decided)
    titles = {
        "states": _("Cases by state"),
        "backlog": _("Backlog by province (the %(n)s largest)", n=PROVINCE_BARS),
        "approval": _("Approval rate by province, last %(days)s days (the %(n)s busiest)",
                      days=days, n=PROVINCE_BARS),
    }
    bars = {
        "states": (states, None),
        "backlog": ([Bar(province_name(c), f.backlog, str(f.backlog))
                     for c, f in by_backlog[:PROVINCE_BARS]], None),
        "approval": ([Bar(province_name(c), 100 * (f.approval_rate or 0),
                          percent(f.approval_rate)) for c, f in by_decided[:PROVINCE_BARS]],
                     100),
    }
    return {name: (titles[name], bar_chart(titles[name], table_note, data, max_value=top,
                                           chart_id=f"chart-{name}"))
            for name, (data, top) in bars.items()}


@bp.get("/dashboard")
@require()
def dashboard():
    days = _period()
    now = utcnow()
    total, provinces = compute(days, now)
    rows = sorted(provinces.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    audit.record("ops.dashboard_viewed", actor=actor(), days=days)
    return render_template(
        "ops/dashboard.html", days=days, periods=PERIODS, now=now, total=total, rows=rows,
        charts=_charts(total, rows, days), states=STATE_LABELS, province_name=province_name,
        percent=percent, age=age, duration=duration)
