"""Property-based tests of uploads: the validator (ekyc/uploads.py) and the onboarding API's
upload routes fed random bytes, photos cut or changed anywhere, wrong content types, bombs
that declare huge dimensions in a tiny file, and a 50 MB body.

tests/ekyc/test_uploads.py has one example of each refusal (a PNG bomb, a polyglot, a truncated
file...). Here hypothesis searches around them: whatever arrives, the validator either returns
a re-encoded JPEG or refuses with one of its documented codes and statuses (400, 413, 415),
the API answers that as JSON, and the case still takes a good photo afterwards.
"""

from __future__ import annotations

import functools
import io
import struct

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from ekyc import api as ekyc_api
from ekyc.uploads import MESSAGES, STATUS, CleanImage, UploadRejected, sanitize, sniff
from tests.ekyc.conftest import photo
from tests.ekyc.test_api import API, new_case, put_document
from tests.ekyc.test_uploads import _png_header_only

PROPERTIES = settings(max_examples=60, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
UPLOAD_STATUSES = {400, 413, 415}
CONTENT_TYPES = ["image/jpeg", "image/png", "image/webp", "image/jpg", "image/gif",
                 "application/octet-stream", "text/html", "text/plain", "application/json",
                 "image/svg+xml", "application/pdf", "image/jpeg; charset=utf-8", "", "image/*"]


@functools.cache
def originals() -> dict[str, bytes]:
    """Small valid photos of each accepted type (built once)."""
    return {fmt: photo(400, 330, fmt=fmt) for fmt in ("JPEG", "PNG", "WEBP")}


@st.composite
def damaged(draw) -> bytes:
    """A valid photo cut short, with bytes changed, spliced or repeated."""
    data = bytearray(originals()[draw(st.sampled_from(["JPEG", "PNG", "WEBP"]))])
    how = draw(st.sampled_from(["cut", "flip", "splice", "insert"]))
    if how == "cut":
        return bytes(data[:draw(st.integers(0, len(data) - 1))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        return bytes(data)
    at = draw(st.integers(0, len(data)))
    chunk = draw(st.binary(min_size=1, max_size=200))
    if how == "splice":
        return bytes(data[:at]) + chunk + bytes(data[at + len(chunk):])
    return bytes(data[:at]) + chunk + bytes(data[at:])


magic = st.sampled_from([b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
                         b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"GIF89a",
                         b"<svg", b"%PDF-1.7", b"PK\x03\x04"])
uploads = st.one_of(st.binary(max_size=3000),
                    st.tuples(magic, st.binary(max_size=3000)).map(b"".join),
                    damaged())


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) claims another size: a bomb's header."""
    data = bytearray(originals()["JPEG"])
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def ctx(ekyc_app):
    app = ekyc_app(UPLOAD_MAX_BYTES=200_000, UPLOAD_MAX_PIXELS=2_000_000)
    with app.test_request_context("/"):
        yield app


def _outcome(data: bytes, content_type: str | None):
    """What sanitize() does: a CleanImage or a documented UploadRejected, nothing else."""
    try:
        return sanitize(data, content_type)
    except UploadRejected as exc:
        assert exc.code in MESSAGES, exc.code
        assert exc.status == STATUS.get(exc.code, 400) and exc.status in UPLOAD_STATUSES
        assert str(exc.message)
        return exc


@PROPERTIES
@given(data=uploads, content_type=st.sampled_from([None, *CONTENT_TYPES]))
def test_the_validator_only_re_encodes_or_refuses(ctx, data, content_type):
    result = _outcome(data, content_type)
    if isinstance(result, CleanImage):  # what gets in is a fresh, metadata-free JPEG
        assert sniff(result.data) == "image/jpeg" and result.content_type == "image/jpeg"
        assert min(result.width, result.height) >= ctx.config["UPLOAD_MIN_SIDE"]
        again = sanitize(result.data, "image/jpeg")
        assert (again.width, again.height) == (result.width, result.height)


@PROPERTIES
@given(width=st.integers(1, 65535), height=st.integers(1, 65535),
       kind=st.sampled_from(["jpeg", "png"]))
def test_declared_dimensions_over_the_pixel_limit_are_refused_before_decoding(
        ctx, width, height, kind):
    """A decompression bomb: the header's size decides, whatever the (tiny) file holds."""
    data = jpeg_claiming(width, height) if kind == "jpeg" else _png_header_only(width, height)
    result = _outcome(data, None)
    if width * height > ctx.config["UPLOAD_MAX_PIXELS"]:
        assert isinstance(result, UploadRejected)
        assert (result.code, result.status) == ("too_many_pixels", 413)


# -- through the onboarding API ------------------------------------------------------------------

@pytest.fixture
def api_case(ekyc_app):
    app = ekyc_app()
    api = app.test_client()
    case_id, auth = new_case(api)
    return api, case_id, auth


def _assert_api_error(response, statuses=UPLOAD_STATUSES) -> None:
    assert response.status_code in statuses, (response.status_code, response.data[:300])
    assert response.mimetype == "application/json"
    assert response.json["error"] in ekyc_api.ERROR_CODES
    assert response.json["error_description"]


def _still_works(api, case_id, auth) -> None:
    """The refusals left the case usable: a good photo is taken, the case answers."""
    assert put_document(api, case_id, auth, "front").status_code == 200
    status = api.get(f"{API}/cases/{case_id}", headers=auth)
    assert status.status_code == 200 and status.json["case_id"] == case_id


@PROPERTIES
@given(data=uploads, content_type=st.sampled_from(CONTENT_TYPES),
       multipart=st.booleans(), side=st.sampled_from(["front", "back"]))
def test_the_document_route_answers_json_for_anything(api_case, data, content_type, multipart,
                                                      side):
    api, case_id, auth = api_case
    url = f"{API}/cases/{case_id}/documents/{side}"
    if multipart:
        response = api.post(url, headers=auth, content_type="multipart/form-data",
                            data={"image": (io.BytesIO(data), "card.jpg",
                                            content_type or "application/octet-stream")})
    else:
        response = api.post(url, headers=auth, data=data, content_type=content_type)
    note(f"{response.status_code} {response.get_data(as_text=True)[:200]}")
    if response.status_code != 200:
        _assert_api_error(response)


def test_after_every_kind_of_refusal_the_case_still_takes_a_photo(api_case):
    api, case_id, auth = api_case
    refusals = [
        (b"", "image/jpeg", 400), (b"GIF89a" + b"\x00" * 50, "image/gif", 415),
        (originals()["JPEG"][:2000], "image/jpeg", 400), (jpeg_claiming(60000, 60000),
                                                          "image/jpeg", 413),
        (_png_header_only(50_000, 50_000), "image/png", 413),
        (originals()["PNG"], "image/jpeg", 415), (b"<html></html>", "text/html", 415),
    ]
    for data, content_type, status in refusals:
        response = api.post(f"{API}/cases/{case_id}/documents/front", data=data,
                            content_type=content_type, headers=auth)
        _assert_api_error(response, {status})
    _still_works(api, case_id, auth)


@pytest.mark.parametrize("route", ["documents/front", "selfie"])
@pytest.mark.parametrize("multipart", [False, True])
def test_a_50_mb_body_is_refused_with_413_and_the_case_goes_on(api_case, route, multipart):
    api, case_id, auth = api_case
    body = b"\xff\xd8\xff" + b"\x00" * (50 * 1024 * 1024)
    url = f"{API}/cases/{case_id}/{route}"
    if multipart:  # encoded here: the test client would spool 50 MB to an unclosed file
        part = (b'--B\r\nContent-Disposition: form-data; name="%s"; filename="big.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n")
        name = b"image" if route.startswith("documents") else b"frames"
        response = api.post(url, headers=auth, content_type="multipart/form-data; boundary=B",
                            data=part % name + body + b"\r\n--B--\r\n")
    else:
        response = api.post(url, headers=auth, data=body, content_type="image/jpeg")
    if route == "selfie" and not multipart:  # refused by its type before the body is read
        _assert_api_error(response, {415})
    else:
        _assert_api_error(response, {413})
        assert response.json["error"] == "request_too_large"
    _still_works(api, case_id, auth)
