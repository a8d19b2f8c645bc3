"""The audit log page (`ops.audit_log`): supervisors and auditors only, newest first, filters,
pages by seq, and the chain verification that names the first broken entry."""

from __future__ import annotations

import re

from sqlalchemy import text

from idp import audit
from idp.extensions import db
from idp.models import AuditEvent
from tests.ekyc.review.conftest import sign_in


def _entries(app):
    """A few known entries after the seed's: two decisions, a lock, a sign-in."""
    with app.app_context():
        audit.record("ops.decision", actor="op1", case_id="case-aaa", kind="approve",
                     reason_code="documents_ok")
        audit.record("ops.decision", actor="op2", case_id="case-bbb", kind="reject",
                     reason_code="face_mismatch")
        audit.record("ops.account_locked", actor="sup1", account_id="acc-1234567890",
                     reason_code="fraud_suspected")
        audit.record("login.success", account_id="acc-1234567890", client_id="portal-1")
        db.session.remove()


def _client(app, staff, username):
    staff(app)
    client = app.test_client()
    sign_in(client, app, username)
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    return client


def _seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', html)]


def _events(html: str) -> list[str]:
    return re.findall(r"<td><code>([a-z_.]+)</code></td>", html)


def test_operators_may_not_see_it(app, staff):
    client = _client(app, staff, "op1")
    assert client.get("/ops/audit").status_code == 403
    assert client.post("/ops/audit").status_code in (400, 403)


def test_signed_out_readers_are_sent_to_sign_in(app):
    response = app.test_client().get("/ops/audit")
    assert response.status_code == 302 and "/ops/login" in response.headers["Location"]


def test_auditors_see_the_entries_newest_first_and_the_view_is_logged(app, staff):
    client = _client(app, staff, "aud1")
    _entries(app)
    html = client.get("/ops/audit").get_data(as_text=True)
    seqs = _seqs(html)
    assert seqs == sorted(seqs, reverse=True) and len(seqs) >= 5
    assert _events(html)[:5] == ["ops.audit_viewed", "login.success", "ops.account_locked",
                                 "ops.decision", "ops.decision"]
    assert "fraud_suspected" in html and "acc-1234…" in html and "portal-1" in html
    assert "acc-1234567890" not in html.replace('account=acc-1234567890', '')
    with app.app_context():
        viewed = db.session.scalar(db.select(AuditEvent).filter_by(event="ops.audit_viewed"))
        assert viewed.actor == "aud1"
        db.session.remove()


def test_supervisors_see_it_too(app, staff):
    assert _client(app, staff, "sup1").get("/ops/audit").status_code == 200


def test_filters(app, staff):
    client = _client(app, staff, "aud1")
    _entries(app)
    assert set(_events(client.get("/ops/audit?event=ops.dec").get_data(as_text=True))) == \
        {"ops.decision"}
    html = client.get("/ops/audit?actor=op2").get_data(as_text=True)
    assert _events(html) == ["ops.decision"] and "face_mismatch" in html
    html = client.get("/ops/audit?account=acc-1234").get_data(as_text=True)
    assert _events(html) == ["login.success", "ops.account_locked"]
    html = client.get("/ops/audit?case=case-aaa").get_data(as_text=True)
    assert _events(html) == ["ops.decision"] and "documents_ok" in html
    html = client.get("/ops/audit?event=%25").get_data(as_text=True)  # a LIKE wildcard: literal
    assert "No entries match." in html


def test_pages_follow_the_chain_without_gaps_or_repeats(app, staff):
    client = _client(app, staff, "aud1")
    with app.app_context():
        for i in range(120):
            audit.record("test.page", actor="tester", n=i, commit=False)
        db.session.commit()
        db.session.remove()
    html = client.get("/ops/audit?event=test.").get_data(as_text=True)
    seen = _seqs(html)
    while (older := re.search(r'href="([^"]*before=\d+[^"]*)"', html)):
        html = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
        seen += _seqs(html)
    assert len(seen) == 120 and len(set(seen)) == 120 and seen == sorted(seen, reverse=True)
    newer = re.search(r'href="([^"]*after=\d+[^"]*)"', html).group(1).replace("&amp;", "&")
    assert _seqs(client.get(newer).get_data(as_text=True)) == seen[-70:-20]


def _verify(client) -> str:
    page = client.get("/ops/audit").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/ops/audit", data={"csrf_token": token})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_verify_says_intact(app, staff):
    client = _client(app, staff, "aud1")
    _entries(app)
    with app.app_context():
        total = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent))
        db.session.remove()
    html = _verify(client)
    # the GET that fetched the form added one entry before the verification
    assert f"Chain intact: {total + 1} entries." in html


def test_verify_needs_the_form_token(app, staff):
    client = _client(app, staff, "aud1")
    assert client.post("/ops/audit").status_code == 400


def test_verify_names_a_modified_entry(app, staff):
    client = _client(app, staff, "aud1")
    _entries(app)
    with app.app_context():
        seq = db.session.scalar(db.select(AuditEvent.seq).filter_by(actor="op2"))
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL dinhdanh.audit_maintenance = 'on'"))
        db.session.execute(text("UPDATE audit_events SET detail = :d WHERE seq = :seq"),
                           {"d": '{"case_id": "case-bbb", "kind": "approve"}', "seq": seq})
        db.session.commit()
        db.session.remove()
    html = _verify(client)
    assert f"broken at entry {seq} (ops.decision" in html
    assert "the entry was changed" in html
    assert f"The {seq - 1} entries before it are intact." in html
    with app.app_context():
        last = db.session.scalar(db.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        assert last.event == "ops.audit_viewed" and last.detail["verified"] == "broken"
        db.session.remove()


def test_verify_names_removed_last_entries(app, staff):
    client = _client(app, staff, "sup1")
    _entries(app)
    page = client.get("/ops/audit").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    with app.app_context():  # someone removes the newest entry (this very view's)
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL dinhdanh.audit_maintenance = 'on'"))
        last = db.session.scalar(db.select(db.func.max(AuditEvent.seq)))
        db.session.execute(text("DELETE FROM audit_events WHERE seq = :seq"), {"seq": last})
        db.session.commit()
        db.session.remove()
    html = client.post("/ops/audit", data={"csrf_token": token}).get_data(as_text=True)
    assert "Chain broken at its end" in html and "removed from, or added to, the end" in html
    assert f"The {last - 1} entries before it are intact." in html
