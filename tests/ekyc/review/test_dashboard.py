"""The dashboard (`ops.dashboard`): the figures on a small known set of cases (counts, rates,
backlog and its age, mean decision time, by province), the page and its charts, who may see it."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from ekyc.models import Case, CaseEvent
from ekyc.review import dashboard
from idp.extensions import db
from idp.models import AuditEvent, utcnow
from tests.ekyc.review.conftest import sign_in

DAY = dt.timedelta(days=1)


def _case(now, *, state, province, submitted=None, took=None, review=None, reviewed=False):
    """A case in `state`; submitted `submitted` ago and decided `took` seconds later; in review
    since `review` ago; `reviewed`: it went through review before its decision."""
    case = Case(state=state, province=province, token_hash="x" * 64, consent_version="t",
                consent_text_hash="y" * 64, created_at=now - 20 * DAY, updated_at=now)
    if submitted is not None:
        case.submitted_at = now - submitted
        if took is not None:
            case.decided_at = case.submitted_at + dt.timedelta(seconds=took)
    if review is not None:
        case.review_since = now - review
    db.session.add(case)
    db.session.flush()
    if reviewed or state == "needs_review":
        db.session.add(CaseEvent(case_id=case.id, from_state="processing",
                                 to_state="needs_review"))
    return case


@pytest.fixture
def known_cases(app):
    """Hà Nội (001): A approved (60 s), B approved after review (1 h), C rejected (120 s),
    D in review for 2 days, E approved 40 days ago (outside the period). Hồ Chí Minh (079):
    F and G in review for 4 and 6 days, H rejected after review (2 h). No province: I capturing."""
    now = utcnow()
    with app.app_context():
        _case(now, state="approved", province="001", submitted=10 * DAY, took=60)
        _case(now, state="approved", province="001", submitted=5 * DAY, took=3600,
              reviewed=True)
        _case(now, state="rejected", province="001", submitted=3 * DAY, took=120)
        _case(now, state="needs_review", province="001", submitted=2 * DAY, review=2 * DAY)
        _case(now, state="approved", province="001", submitted=40 * DAY, took=30)
        _case(now, state="needs_review", province="079", submitted=4 * DAY, review=4 * DAY)
        _case(now, state="needs_review", province="079", submitted=6 * DAY, review=6 * DAY)
        _case(now, state="rejected", province="079", submitted=DAY, took=7200, reviewed=True)
        _case(now, state="capturing", province=None)
        db.session.commit()
        db.session.remove()
    return now


def _close(a: dt.datetime, b: dt.datetime) -> bool:
    return abs(a - b) < dt.timedelta(seconds=5)


def test_figures_of_a_known_set(app, known_cases):
    now = known_cases
    with app.app_context():
        total, provinces = dashboard.compute(30, utcnow())
        db.session.remove()
    assert total.by_state == {"approved": 3, "rejected": 2, "needs_review": 3, "capturing": 1}
    assert (total.approved, total.rejected, total.decided) == (2, 2, 4)
    assert total.approval_rate == pytest.approx(0.5)
    assert (total.reviewed, total.reached) == (5, 7)  # B, H, D, F, G of A B C D F G H
    assert total.mean_decision.total_seconds() == pytest.approx((60 + 3600 + 120 + 7200) / 4,
                                                                abs=0.01)
    assert total.backlog == 3
    assert _close(total.oldest, now - 6 * DAY) and _close(total.median, now - 4 * DAY)

    hanoi, hcm, unknown = provinces["001"], provinces["079"], provinces[None]
    assert hanoi.by_state == {"approved": 3, "rejected": 1, "needs_review": 1}
    assert hanoi.approval_rate == pytest.approx(2 / 3)
    assert hanoi.review_rate == pytest.approx(2 / 4)
    assert hanoi.mean_decision.total_seconds() == pytest.approx((60 + 3600 + 120) / 3, abs=0.01)
    assert hanoi.backlog == 1 and _close(hanoi.oldest, now - 2 * DAY)
    assert _close(hanoi.median, now - 2 * DAY)
    assert hcm.approval_rate == 0 and hcm.review_rate == 1
    assert hcm.mean_decision.total_seconds() == pytest.approx(7200, abs=0.01)
    assert hcm.backlog == 2 and _close(hcm.median, now - 5 * DAY)  # between 4 and 6 days
    assert unknown.by_state == {"capturing": 1} and unknown.approval_rate is None


def test_a_longer_period_counts_older_decisions(app, known_cases):
    with app.app_context():
        total, provinces = dashboard.compute(90, utcnow())
        db.session.remove()
    assert (total.approved, total.decided) == (3, 5)
    assert provinces["001"].approval_rate == pytest.approx(3 / 4)


def _english(client):
    with client.session_transaction() as sess:
        sess["lang"] = "en"


def _row(html: str, province: str) -> list[str]:
    row = re.search(rf'<tr data-province="{province}">(.*?)</tr>', html, re.DOTALL).group(1)
    return [re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.DOTALL)]


def test_the_page_shows_the_figures_charts_and_tables(app, staff, known_cases):
    staff(app)
    client = app.test_client()
    sign_in(client, app, "op1")
    _english(client)
    response = client.get("/ops/dashboard")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html  # the CSP allows neither inline
    assert html.count('role="img"') == 3 and "<title id=" in html and "<desc id=" in html
    assert "50.0%" in html and "71.4%" in html  # approval, review rate
    assert "46 minutes" in html  # mean decision time: 2745 s
    assert _row(html, "001") == ["Hà Nội (001)", "5", "3", "66.7%", "50.0%", "21 minutes",
                                 "1", "2 days", "2 days"]
    assert _row(html, "079") == ["TP. Hồ Chí Minh (079)", "3", "1", "0.0%", "100.0%",
                                 "2 hours", "2", "6 days", "5 days"]
    # the state chart's bars carry their numbers as text, like its table
    chart = html[html.index('id="chart-states-t"'):]
    chart = chart[:chart.index("</svg>")]
    assert ">Needs review<" in chart and ">3<" in chart


def test_the_period_is_chosen_by_the_reader(app, staff, known_cases):
    staff(app)
    client = app.test_client()
    sign_in(client, app, "op1")
    _english(client)
    html = client.get("/ops/dashboard?days=90").get_data(as_text=True)
    assert '<option value="90" selected>' in html
    assert _row(html, "001")[2:4] == ["4", "75.0%"]
    assert client.get("/ops/dashboard?days=nonsense").status_code == 200


def test_auditors_and_supervisors_see_it_and_each_view_is_logged(app, staff, known_cases):
    staff(app)
    for username in ("aud1", "sup1"):
        client = app.test_client()
        sign_in(client, app, username)
        assert client.get("/ops/dashboard").status_code == 200
    with app.app_context():
        viewed = db.session.scalars(db.select(AuditEvent)
                                    .filter_by(event="ops.dashboard_viewed")).all()
        assert sorted(e.actor for e in viewed) == ["aud1", "sup1"]
        assert viewed[0].detail == {"days": 30}
        db.session.remove()


def test_signed_out_readers_are_sent_to_sign_in(app, known_cases):
    response = app.test_client().get("/ops/dashboard")
    assert response.status_code == 302 and "/ops/login" in response.headers["Location"]


def test_an_empty_database_shows_dashes_not_errors(app, staff):
    staff(app)
    client = app.test_client()
    sign_in(client, app, "aud1")
    _english(client)
    html = client.get("/ops/dashboard").get_data(as_text=True)
    assert "No cases yet." in html
