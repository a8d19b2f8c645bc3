"""Citizen verification, portraits and the access log (register.api)."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import unicodedata

import pytest
from PIL import Image

from register import seed as synthetic
from register.models import AccessLog, db

from .conftest import LOG_HASH_KEY, PURPOSE, assertion, bearer

DEMO = "001199000001"
DEMO_FIELDS = {"full_name": "Nguyễn Thị Minh Anh", "date_of_birth": "1999-03-15", "sex": "F",
               "residence": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội",
               "card_issue_date": "2024-04-10"}


def verify(client, body, token=None):
    return client.post("/v1/citizens/verify", json=body, headers=bearer(token))


def test_every_field_matches_for_the_demo_citizen(client):
    resp = verify(client, {"national_id": DEMO, "fields": DEMO_FIELDS, "purpose": PURPOSE})
    assert resp.status_code == 200
    data = resp.get_json()
    assert set(data) == {"found", "status", "fields", "has_portrait", "checked_at"}
    assert data["found"] is True and data["status"] == "alive"
    assert data["fields"] == {name: "match" for name in DEMO_FIELDS}
    assert data["checked_at"].endswith("Z")


@pytest.mark.parametrize("field,wrong", [
    ("full_name", "Nguyễn Thị Minh Ánh"),
    ("full_name", "Nguyen Thi Minh Anh"),  # diacritics matter
    ("date_of_birth", "1999-03-16"),
    ("sex", "M"),
    ("residence", "Số 2 Tràng Tiền, Hoàn Kiếm, Hà Nội"),
    ("card_issue_date", "2021-07-01"),
])
def test_one_wrong_field_is_the_only_mismatch(client, field, wrong):
    fields = {**DEMO_FIELDS, field: wrong}
    data = verify(client, {"national_id": DEMO, "fields": fields}).get_json()
    assert data["fields"][field] == "mismatch"
    assert [name for name, v in data["fields"].items() if v == "mismatch"] == [field]


def test_names_compare_after_nfc_case_and_whitespace(client):
    decomposed = unicodedata.normalize("NFD", "  NGUYỄN   thị minh ANH ")
    fields = {"full_name": decomposed, "residence": "số 1 tràng tiền ,hoàn kiếm,  hà nội"}
    data = verify(client, {"national_id": DEMO, "fields": fields}).get_json()
    assert data["fields"] == {"full_name": "match", "residence": "match"}


def test_discloses_nothing_that_was_not_asked(client, citizens):
    person = citizens[7]
    resp = verify(client, {"national_id": person.national_id,
                           "fields": {"date_of_birth": "1900-01-01"}})
    data = resp.get_json()
    assert data["fields"] == {"date_of_birth": "mismatch"}
    text = resp.get_data(as_text=True)
    for value in (person.full_name, person.family_name, person.residence,
                  person.date_of_birth.isoformat(), person.card_issue_date.isoformat(),
                  person.hometown):
        assert value not in text
    assert verify(client, {"national_id": person.national_id}).get_json()["fields"] == {}


def test_unknown_number_is_not_found(client):
    data = verify(client, {"national_id": "001199999999",
                           "fields": {"full_name": "Ai Đó"}}).get_json()
    assert data["found"] is False and data["status"] is None
    assert data["fields"] == {} and data["has_portrait"] is False


@pytest.mark.parametrize("status", ["deceased", "card_revoked"])
def test_seeded_statuses_are_reported(client, citizens, status):
    person = next(c for c in citizens if c.status == status)
    data = verify(client, {"national_id": person.national_id,
                           "fields": {"full_name": person.full_name}}).get_json()
    assert data["status"] == status and data["fields"] == {"full_name": "match"}


def test_status_change_is_reported(client):
    resp = client.post(f"/v1/admin/citizens/{DEMO}/status", json={"status": "deceased"},
                       headers=bearer_admin())
    assert resp.status_code == 200
    assert verify(client, {"national_id": DEMO}).get_json()["status"] == "deceased"


def bearer_admin():
    from .conftest import ADMIN_TOKEN

    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize("body,needle", [
    ({"national_id": "00119900000"}, "12 digits"),
    ({"national_id": 1199000001}, "12 digits"),
    ({"national_id": DEMO, "fields": {"eye_colour": "brown"}}, "unknown field"),
    ({"national_id": DEMO, "fields": {"date_of_birth": "15/03/1999"}}, "YYYY-MM-DD"),
    ({"national_id": DEMO, "fields": {"date_of_birth": "1999-02-30"}}, "YYYY-MM-DD"),
    ({"national_id": DEMO, "fields": {"sex": "Nữ"}}, "'M' or 'F'"),
    ({"national_id": DEMO, "fields": {"full_name": 5}}, "string"),
    ({"national_id": DEMO, "extra": 1}, "unknown member"),
    ({"national_id": DEMO, "fields": None}, "fields must be an object"),
    ({"national_id": DEMO, "fields": ["sex"]}, "fields must be an object"),
    ({"national_id": DEMO, "purpose": None}, "purpose must be a string"),
    ({"national_id": DEMO, "purpose": "x" * 201}, "purpose must be a string"),
    ([DEMO], "JSON object"),
])
def test_malformed_requests_are_400(client, body, needle):
    resp = verify(client, body)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"
    assert needle in resp.get_json()["error_description"]


def test_purpose_in_the_body_must_be_the_signed_one(client):
    resp = verify(client, {"national_id": DEMO, "purpose": "marketing"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "purpose_mismatch"


def test_access_log_has_caller_purpose_and_no_raw_number(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    verify(client, {"national_id": DEMO, "fields": {"sex": "F"}})
    client.post("/v1/citizens/verify", json={"national_id": DEMO})  # no token
    client.get(f"/v1/citizens/{DEMO}/portrait", headers=bearer())
    with app.app_context():
        rows = db.session.scalars(db.select(AccessLog).order_by(AccessLog.id)).all()
    expected_hash = hmac.new(LOG_HASH_KEY.encode(), DEMO.encode(), hashlib.sha256).hexdigest()
    assert [(r.endpoint, r.outcome) for r in rows] == [
        ("verify", "found"), ("verify", "denied"), ("portrait", rows[2].outcome)]
    assert rows[0].caller == "dinhdanh-idp" and rows[0].purpose == PURPOSE
    assert rows[0].national_id_hash == expected_hash
    assert rows[1].caller is None and rows[1].purpose is None
    assert rows[2].purpose == PURPOSE and rows[2].national_id_hash == expected_hash
    for row in rows:
        assert DEMO not in " ".join(str(getattr(row, c.name)) for c in AccessLog.__table__.c)
    assert DEMO not in caplog.text


def test_bad_requests_are_logged_with_their_error(app, client):
    verify(client, {"national_id": DEMO, "fields": {"sex": "X"}})
    with app.app_context():
        row = db.session.scalars(db.select(AccessLog)).one()
    assert (row.outcome, row.purpose) == ("invalid_request", PURPOSE)


# --- portraits -------------------------------------------------------------------------------
def _portrait_citizen(citizens):
    if synthetic.faces_dir() is None:
        pytest.skip("faces-dev data absent (set EKYC_TEST_DATA)")
    return citizens[3]


def test_portrait_for_an_authorised_caller(client, citizens):
    person = _portrait_citizen(citizens)
    data = verify(client, {"national_id": person.national_id}).get_json()
    assert data["has_portrait"] is True
    resp = client.get(f"/v1/citizens/{person.national_id}/portrait?purpose={PURPOSE}",
                      headers=bearer())
    assert resp.status_code == 200 and resp.mimetype == "image/jpeg"
    assert resp.headers["Cache-Control"] == "no-store"
    with Image.open(io.BytesIO(resp.data)) as img:
        assert (img.format, img.size) == ("JPEG", (240, 320))


def test_portrait_needs_a_valid_assertion(client, citizens):
    person = _portrait_citizen(citizens)
    url = f"/v1/citizens/{person.national_id}/portrait"
    assert client.get(url).status_code == 401
    expired = assertion(iat=1_000_000, exp=1_000_060)
    resp = client.get(url, headers=bearer(expired))
    assert resp.status_code == 401 and resp.mimetype == "application/json"


def test_portrait_purpose_must_match(client, citizens):
    person = _portrait_citizen(citizens)
    resp = client.get(f"/v1/citizens/{person.national_id}/portrait?purpose=other",
                      headers=bearer())
    assert resp.status_code == 400


def test_portrait_404_without_portrait_or_citizen(client, citizens):
    last = citizens[-1]  # beyond the ~283 faces-dev identities: no portrait
    assert last.portrait_file is None
    resp = client.get(f"/v1/citizens/{last.national_id}/portrait", headers=bearer())
    assert resp.status_code == 404 and "no portrait" in resp.get_json()["error_description"]
    assert verify(client, {"national_id": last.national_id}).get_json()["has_portrait"] is False
    resp = client.get("/v1/citizens/001199999999/portrait", headers=bearer())
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_found"
    assert client.get("/v1/citizens/12345/portrait", headers=bearer()).status_code == 400
