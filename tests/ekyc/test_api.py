"""The onboarding JSON API for mobile apps: every route, its authentication with the bearer
case token, its errors (JSON, right status, caller's language) and its OpenAPI document."""

from __future__ import annotations

import io
import re

import pytest

from tests.ekyc.conftest import FakeReader, photo, reading_for, selfie_frames

API = "/api/onboarding/v1"


@pytest.fixture
def app(ekyc_app):
    return ekyc_app()


@pytest.fixture
def api(app):
    return app.test_client()


def _consent_version() -> str:
    from ekyc import policy

    return policy.CONSENT_VERSION


def new_case(api, **headers) -> tuple[str, dict]:
    response = api.post(f"{API}/cases", json={"consent": True,
                                              "consent_version": _consent_version()},
                        headers=headers)
    assert response.status_code == 201, response.json
    body = response.json
    return body["case_id"], {"Authorization": f"Bearer {body['case_token']}"}


def put_document(api, case_id, auth, side="front", data=None, content_type="image/jpeg"):
    return api.post(f"{API}/cases/{case_id}/documents/{side}", data=data or photo(),
                    content_type=content_type, headers=auth)


def send_frames(api, case_id, auth, nonce, count=4, stamps=None):
    stamps = stamps if stamps is not None else [100 + 200 * i for i in range(count)]
    return api.post(f"{API}/cases/{case_id}/selfie", headers=auth,
                    content_type="multipart/form-data",
                    data={"nonce": nonce, "timestamps_ms": [str(s) for s in stamps],
                          "frames": [(io.BytesIO(f), f"{i}.jpg", "image/jpeg")
                                     for i, f in enumerate(selfie_frames(count))]})


def captured(api) -> tuple[str, dict]:
    case_id, auth = new_case(api)
    assert put_document(api, case_id, auth, "front").status_code == 200
    assert put_document(api, case_id, auth, "back").status_code == 200
    nonce = api.post(f"{API}/cases/{case_id}/challenge", headers=auth).json["nonce"]
    assert send_frames(api, case_id, auth, nonce).status_code == 200
    return case_id, auth


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.json
    assert body["error"] == code
    assert body["error_description"] and not re.search(r"[\r\n\t]", body["error_description"])
    from ekyc.api import ERROR_CODES

    assert code in ERROR_CODES
    return body


# -- consent and case creation -----------------------------------------------------------------

def test_consent_text_in_the_callers_language(api):
    vi = api.get(f"{API}/consent").json
    en = api.get(f"{API}/consent", headers={"Accept-Language": "en-GB,en;q=0.9"}).json
    forced = api.get(f"{API}/consent?ui_locales=vi", headers={"Accept-Language": "en"}).json
    assert vi["locale"] == "vi" and "DỮ LIỆU SINH TRẮC HỌC" in vi["text"]
    assert en["locale"] == "en" and "BIOMETRIC DATA" in en["text"]
    assert forced["locale"] == "vi"
    assert vi["consent_version"] == en["consent_version"] == _consent_version()


def test_create_case_returns_id_token_and_consent_version(app, api):
    response = api.post(f"{API}/cases", json={"consent": True,
                                              "consent_version": _consent_version()},
                        headers={"Accept-Language": "en"})
    assert response.status_code == 201
    body = response.json
    assert set(body) == {"case_id", "case_token", "consent_version", "state"}
    assert body["state"] == "created" and body["consent_version"] == _consent_version()
    assert response.headers["Location"].endswith(f"/cases/{body['case_id']}")
    assert response.headers["Cache-Control"] == "no-store"
    from ekyc.models import Case
    from idp.extensions import db

    with app.app_context():
        case = db.session.get(Case, body["case_id"])
        assert case.channel == "api" and case.locale == "en"
        assert body["case_token"] not in case.token_hash  # stored hashed


@pytest.mark.parametrize("body,status,code", [
    ({"consent": False, "consent_version": "2026-11-v1"}, 400, "consent_required"),
    ({"consent_version": "2026-11-v1"}, 400, "consent_required"),
    ({"consent": "yes", "consent_version": "2026-11-v1"}, 400, "consent_required"),
    ({"consent": True, "consent_version": "1999-01-v0"}, 409, "consent_outdated"),
    ({"consent": True}, 409, "consent_outdated"),
    ([1, 2], 400, "invalid_request"),
])
def test_case_needs_explicit_consent_to_the_current_text(app, api, body, status, code):
    assert_error(api.post(f"{API}/cases", json=body), status, code)


def test_case_creation_needs_a_json_body(api):
    response = api.post(f"{API}/cases", data="consent=true", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_case_creation_is_rate_limited_per_ip(ekyc_app):
    api = ekyc_app(EKYC_CASES_PER_IP=3).test_client()
    for _ in range(3):
        new_case(api)
    response = api.post(f"{API}/cases", json={"consent": True,
                                              "consent_version": _consent_version()})
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    other = api.post(f"{API}/cases", json={"consent": True,
                                           "consent_version": _consent_version()},
                     environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 201  # another network is not affected


# -- authentication ------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("get", ""), ("post", "/documents/front"), ("post", "/challenge"), ("post", "/selfie"),
    ("post", "/submit"),
])
def test_every_case_route_needs_the_case_token(api, method, path):
    case_id, auth = new_case(api)
    other_id, other_auth = new_case(api)
    url = f"{API}/cases/{case_id}{path}"
    missing = getattr(api, method)(url)
    body = assert_error(missing, 401, "invalid_token")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert body
    wrong = getattr(api, method)(url, headers={"Authorization": "Bearer not-the-token"})
    assert_error(wrong, 401, "invalid_token")
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    basic = getattr(api, method)(url, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(basic, 401, "invalid_token")
    # The token of another case opens only that case.
    assert_error(getattr(api, method)(url, headers=other_auth), 401, "invalid_token")
    unknown = getattr(api, method)(f"{API}/cases/00000000-0000-0000-0000-000000000000{path}",
                                   headers=auth)
    assert_error(unknown, 401, "invalid_token")
    assert other_id != case_id


# -- documents -----------------------------------------------------------------------------------

def test_documents_as_raw_body_or_multipart(app, api):
    case_id, auth = new_case(api)
    raw = put_document(api, case_id, auth, "front")
    assert raw.status_code == 200
    assert raw.json == {"case_id": case_id, "side": "front", "state": "capturing"}
    multipart = api.post(f"{API}/cases/{case_id}/documents/back", headers=auth,
                         content_type="multipart/form-data",
                         data={"image": (io.BytesIO(photo(fmt="PNG")), "back.png", "image/png")})
    assert multipart.status_code == 200
    status = api.get(f"{API}/cases/{case_id}", headers=auth).json
    done = {s["name"]: s["done"] for s in status["steps"]}
    assert done["document_front"] and done["document_back"] and not done["selfie"]


def test_unknown_side_is_404(api):
    case_id, auth = new_case(api)
    assert_error(put_document(api, case_id, auth, "left"), 404, "not_found")


@pytest.mark.parametrize("data,content_type,status,code", [
    (b"<html><script>alert(1)</script></html>", "image/jpeg", 415, "unsupported_type"),
    (b"%PDF-1.4\n" + b"x" * 500, "application/octet-stream", 415, "unsupported_type"),
    (b"plain text", "text/plain", 415, "unsupported_media_type"),
    (None, "application/json", 415, "unsupported_media_type"),
    (b"", "image/jpeg", 400, "empty"),
    (b"\xff\xd8\xff\xe0broken", "image/jpeg", 400, "corrupt"),
])
def test_non_images_are_refused(api, data, content_type, status, code):
    case_id, auth = new_case(api)
    response = api.post(f"{API}/cases/{case_id}/documents/front", headers=auth,
                        data=data if data is not None else b"{}", content_type=content_type)
    assert_error(response, status, code)


def test_oversized_uploads_are_413(ekyc_app):
    api = ekyc_app(UPLOAD_MAX_BYTES=150_000).test_client()
    case_id, auth = new_case(api)
    big = photo(2000, 1500, quality=100)
    assert 150_000 < len(big) < 300_000
    # Over the image cap: refused by the upload check, in the caller's language.
    response = put_document(api, case_id, auth, data=big)
    assert_error(response, 413, "too_large")
    # Over the body cap: refused before the body is read.
    huge = b"\xff\xd8\xff" + b"\x00" * 400_000
    assert_error(put_document(api, case_id, auth, data=huge), 413, "request_too_large")
    multipart = api.post(f"{API}/cases/{case_id}/documents/front", headers=auth,
                         content_type="multipart/form-data",
                         data={"image": (io.BytesIO(huge), "x.jpg", "image/jpeg")})
    assert_error(multipart, 413, "request_too_large")


def test_errors_speak_the_callers_language(api):
    case_id, auth = new_case(api)
    en = api.post(f"{API}/cases/{case_id}/documents/front", data=b"not an image",
                  content_type="image/jpeg", headers={**auth, "Accept-Language": "en"})
    vi = api.post(f"{API}/cases/{case_id}/documents/front?ui_locales=vi", data=b"not an image",
                  content_type="image/jpeg", headers={**auth, "Accept-Language": "en"})
    assert en.json["error"] == vi.json["error"] == "unsupported_type"
    assert "JPEG" in en.json["error_description"] and "photo" in en.json["error_description"]
    assert en.json["error_description"] != vi.json["error_description"]
    assert "ảnh" in vi.json["error_description"]  # Vietnamese, with its diacritics


# -- challenge, selfie, submit, status -----------------------------------------------------------

def test_challenge_has_actions_with_plain_instructions(api):
    case_id, auth = new_case(api)
    response = api.post(f"{API}/cases/{case_id}/challenge",
                        headers={**auth, "Accept-Language": "en"})
    assert response.status_code == 201
    body = response.json
    assert 2 <= len(body["actions"]) <= 3
    assert [i["action"] for i in body["instructions"]] == body["actions"]
    texts = {"turn_left": "left", "turn_right": "right", "blink": "Blink", "look_up": "up"}
    for item in body["instructions"]:
        assert texts[item["action"]] in item["text"]
    assert body["expires_at"] > body["issued_at"] and body["min_frames"] <= body["max_frames"]


def test_selfie_frames_answer_the_challenge_once(api):
    case_id, auth = new_case(api)
    nonce = api.post(f"{API}/cases/{case_id}/challenge", headers=auth).json["nonce"]
    ok = send_frames(api, case_id, auth, nonce, count=5)
    assert ok.status_code == 200 and ok.json["frames"] == 5
    assert_error(send_frames(api, case_id, auth, nonce), 409, "challenge_used")
    assert_error(send_frames(api, case_id, auth, "forged-nonce"), 400, "challenge_unknown")


def test_selfie_frames_checked_for_count_order_and_type(api):
    case_id, auth = new_case(api)

    def fresh():
        return api.post(f"{API}/cases/{case_id}/challenge", headers=auth).json["nonce"]

    assert_error(send_frames(api, case_id, auth, fresh(), count=1), 400, "frame_count")
    assert_error(send_frames(api, case_id, auth, fresh(), count=3, stamps=[3, 2, 1]), 400,
                 "frame_timing")
    assert_error(send_frames(api, case_id, auth, fresh(), count=3, stamps=[1, 2]), 400,
                 "frame_timing")
    assert_error(send_frames(api, case_id, auth, fresh(), count=3, stamps=[]), 400,
                 "frame_timing")  # the API is for apps with a camera: timing is required
    comma = api.post(f"{API}/cases/{case_id}/selfie", headers=auth,
                     content_type="multipart/form-data",
                     data={"nonce": fresh(), "timestamps_ms": "10,20,x",
                           "frames": [(io.BytesIO(f), "f.jpg", "image/jpeg")
                                      for f in selfie_frames(3)]})
    assert_error(comma, 400, "frame_timing")
    as_json = api.post(f"{API}/cases/{case_id}/selfie", headers=auth, json={"frames": []})
    assert_error(as_json, 415, "unsupported_media_type")


def test_submit_needs_every_capture_then_is_idempotent(ekyc_app, register_stub, citizens):
    app = ekyc_app()
    register_stub(app)
    citizen = next(c for c in citizens[1:] if c.status == "alive")
    app.extensions["ekyc.reader"] = reader = FakeReader(reading_for(citizen))
    api = app.test_client()
    case_id, auth = new_case(api)
    put_document(api, case_id, auth, "front")
    assert_error(api.post(f"{API}/cases/{case_id}/submit", headers=auth), 400, "incomplete")

    case_id, auth = captured(api)
    first = api.post(f"{API}/cases/{case_id}/submit", headers=auth)
    assert first.status_code == 202
    assert first.json["case_id"] == case_id
    assert first.json["state"] == "approved" and first.json["next"] == "activate"
    again = api.post(f"{API}/cases/{case_id}/submit", headers=auth)
    assert again.status_code == 202 and reader.calls == 1  # not processed twice
    status = api.get(f"{API}/cases/{case_id}", headers=auth)
    assert status.status_code == 200
    assert {s["name"] for s in status.json["steps"] if s["done"]} >= {
        "consent", "document_front", "document_back", "selfie", "submitted", "decision"}
    # A decided case takes no more images.
    assert_error(put_document(api, case_id, auth), 409, "case_closed")
    assert_error(api.post(f"{API}/cases/{case_id}/challenge", headers=auth), 409, "case_closed")


def test_waiting_for_the_register_is_reported(ekyc_app, citizens):
    app = ekyc_app()  # the register is unreachable
    app.extensions["ekyc.reader"] = FakeReader(reading_for(citizens[1]))
    api = app.test_client()
    case_id, auth = captured(api)
    response = api.post(f"{API}/cases/{case_id}/submit", headers=auth)
    assert response.status_code == 202
    body = api.get(f"{API}/cases/{case_id}", headers=auth).json
    assert body["state"] == "waiting_register" and body["next"] == "wait"


# -- OpenAPI -------------------------------------------------------------------------------------

def _resolve(document: dict, ref: str) -> dict:
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_openapi_lists_every_route_with_its_methods(app, api):
    response = api.get(f"{API}/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"] == "3.1.0"
    assert document["servers"][0]["url"].endswith(API)
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule[len(API):])
            routes[path] = {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert {path: set(ops) for path, ops in document["paths"].items()} == routes
    for ref in set(_refs(document)):
        assert _resolve(document, ref) is not None, ref
    # Path parameters are declared for every template variable.
    for path, ops in document["paths"].items():
        for op in ops.values():
            declared = {_resolve(document, p["$ref"])["name"] for p in op["parameters"]}
            assert set(re.findall(r"{([a-z_]+)}", path)) <= declared, path
            assert op["responses"]


def test_openapi_error_codes_are_the_ones_the_api_answers(api):
    document = api.get(f"{API}/openapi.json").json
    enum = set(document["components"]["schemas"]["Error"]["properties"]["error"]["enum"])
    for code in ("invalid_token", "not_found", "request_too_large", "unsupported_media_type",
                 "rate_limited", "consent_required", "challenge_used", "too_large",
                 "unsupported_type", "case_closed", "incomplete"):
        assert code in enum
    create = document["paths"]["/cases"]["post"]["responses"]
    assert {"201", "400", "409", "415", "429"} <= set(create)
    upload = document["paths"]["/cases/{case_id}/documents/{side}"]["post"]
    assert {"413", "415", "401", "404"} <= set(upload["responses"])
    assert "image/jpeg" in upload["requestBody"]["content"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
