"""The case page (`ops.case`) and its images (`ops.case_media`): a purpose first, then the card,
faces, fields side by side with mismatches marked, checks, history; every view and image
logged; images only for console roles, never cached, gone after retention."""

from __future__ import annotations

import re

from sqlalchemy import event

from ekyc import service
from ekyc.models import Case, MediaObject, utcnow
from ekyc.review.case_page import field_rows
from idp.extensions import db
from tests.ekyc.conftest import FakeReader, captured_case, reading_for
from tests.ekyc.review.conftest import audit_events, pipeline_case
from tests.ekyc.review.conftest import console_client as console


def misread_case(app, citizen) -> str:
    """A review case whose printed name (OCR) differs from the QR code's."""
    case_id, token = captured_case(app)
    reading = reading_for(citizen, findings=(("printed_name_mismatch", "review"),))
    reading.data["printed"] = {"full_name": "NGUYEN VAN KHAC", "sex": citizen.sex}
    app.extensions["ekyc.reader"] = FakeReader(reading)
    with app.app_context():
        service.submit(service.open_case(case_id, token))
        db.session.remove()
    return case_id


def media_urls(html: str) -> list[str]:
    return re.findall(r'<img class="[^"]*" src="([^"]+)" alt="[^"]+"', html)


def test_the_page_asks_for_a_purpose_first(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "op1")
    for url in (f"/ops/cases/{case_id}", f"/ops/cases/{case_id}?purpose=curiosity"):
        page = client.get(url)
        assert page.status_code == 200
        assert "Why do you open this case?" in page.text
        assert 'name="purpose" value="citizen_request"' in page.text
        assert "Document fields" not in page.text
    assert audit_events(app, "ops.case_viewed") == []


def test_the_case_page_shows_the_evidence_side_by_side_and_logs_the_view(world):
    app, _ids, people = world
    citizen = people[1]
    case_id = misread_case(app, citizen)
    page = console(app, "op1").get(f"/ops/cases/{case_id}?purpose=review")
    assert page.status_code == 200
    html = page.text
    # The fields, QR next to printed text, the disagreement marked.
    assert citizen.full_name in html and "NGUYEN VAN KHAC" in html
    assert 'data-mismatch="full_name"' in html
    assert 'data-mismatch="date_of_birth"' not in html
    assert citizen.national_id in html
    # Images: both sides, the portrait crop, the selfie frames, each with alternative text.
    urls = media_urls(html)
    assert len(set(urls)) == 3 + 4
    assert 'alt="Front of the card"' in html and 'alt="Portrait cropped from the card"' in html
    # Faces with the policy thresholds; every check with outcome/score/threshold/version.
    assert re.search(r"<td data-strict>0\.\d+</td>", html)
    assert re.search(r"<td data-loose>0\.\d+</td>", html)
    for name in ("upload_quality", "document_read", "register_fields_match", "liveness"):
        assert f'data-check="{name}"' in html
    assert "test-1" in html  # the reader's version
    # History and reasons.
    assert "needs review" in html and "Card details to check" in html
    assert "Liveness" in html and "Duplicate candidates" in html
    [viewed] = audit_events(app, "ops.case_viewed")
    assert viewed.actor == "op1" and viewed.detail == {"case_id": case_id, "purpose": "review"}
    assert citizen.national_id not in str(viewed.detail)


def test_field_rows_mark_a_register_mismatch():
    reading = {"qr": {"payload": {"full_name": "Lê Thị Hoa", "birth": "2001-02-03"}},
               "mrz": {"valid": True, "fields": {"birth_date": "2001-02-03"}},
               "printed": {"full_name": "LE THI HOA", "date_of_birth": "03/02/2001"},
               "national_id": "001301000123"}
    rows = {r["name"]: r for r in field_rows(reading, {"full_name": "match",
                                                       "date_of_birth": "mismatch"})}
    assert rows["date_of_birth"]["mismatch"] and not rows["date_of_birth"]["disagree"]
    # Diacritics missing from the OCR text is a disagreement an officer should see.
    assert rows["full_name"]["disagree"] and rows["full_name"]["verdict"] == "match"
    assert rows["national_id"]["values"]["qr"] == "001301000123"


def test_images_are_for_console_roles_only_and_never_cached(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    page = console(app, "aud1").get(f"/ops/cases/{case_id}?purpose=audit")
    url = media_urls(page.text)[0]
    auditor = console(app, "aud1")
    image = auditor.get(url)
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert image.headers["Cache-Control"] == "no-store"
    assert image.data[:2] == b"\xff\xd8"
    [seen] = audit_events(app, "ops.media_viewed")
    assert seen.actor == "aud1" and seen.detail == {"case_id": case_id, "kind": "front"}
    # Signed out (or a citizen's browser): sent to the console sign-in, no image.
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and "/ops/login" in anonymous.headers["Location"]
    # An image id under another case's URL is not found.
    other = pipeline_case(app, people[2])
    media_id = url.rsplit("/", 1)[1]
    assert auditor.get(f"/ops/cases/{other}/media/{media_id}").status_code == 404
    assert len(audit_events(app, "ops.media_viewed")) == 1


def test_media_past_retention_is_shown_as_deleted(world):
    app, _ids, people = world
    case_id = pipeline_case(app, people[1])
    client = console(app, "op1")
    url = media_urls(client.get(f"/ops/cases/{case_id}?purpose=review").text)[0]
    with app.app_context():
        now = utcnow()
        for obj in db.session.scalars(db.select(MediaObject).filter_by(case_id=case_id)):
            obj.expires_at = now
        db.session.commit()
        from ekyc import media

        assert media.purge_expired() > 0
    page = client.get(f"/ops/cases/{case_id}?purpose=review")
    assert "deleted under the retention policy" in page.text.lower()
    assert media_urls(page.text) == []
    assert client.get(url).status_code == 410


def test_unknown_and_unsubmitted_cases_are_not_found(world):
    app, _ids, _people = world
    client = console(app, "op1")
    assert client.get("/ops/cases/nope?purpose=review").status_code == 404
    case_id, _token = captured_case(app)  # the citizen is still capturing: not for operators
    assert client.get(f"/ops/cases/{case_id}?purpose=review").status_code == 404


def test_the_page_runs_a_fixed_small_number_of_queries(world):
    app, _ids, people = world
    case_id = misread_case(app, people[1])
    client = console(app, "op1")
    client.get(f"/ops/cases/{case_id}?purpose=review")  # warm the session's caches
    with app.app_context():
        engine = db.engine
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(f"/ops/cases/{case_id}?purpose=review").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # Session, case with its checks/events/media, decisions, names, audit append: no query
    # per check, image or event.
    assert len(statements) <= 20, statements
    with app.app_context():
        assert len(db.session.get(Case, case_id).checks) >= 9
