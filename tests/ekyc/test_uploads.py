"""Uploads (ekyc/uploads.py): only plain photos get in, and what gets in is re-encoded.

Each refusal is what a citizen's phone would show: a status (413 too big, 415 not a photo,
400 damaged) and a message in their language.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from flask_babel import force_locale
from PIL import Image

from ekyc.uploads import UploadRejected, sanitize
from tests.ekyc.conftest import photo


@pytest.fixture
def ctx(ekyc_app):
    app = ekyc_app(UPLOAD_MAX_BYTES=200_000, UPLOAD_MAX_PIXELS=2_000_000)
    with app.test_request_context("/"):
        yield app


def rejected(data: bytes, content_type: str | None = None) -> UploadRejected:
    with pytest.raises(UploadRejected) as info:
        sanitize(data, content_type)
    return info.value


def test_a_plain_photo_is_accepted_and_re_encoded_as_jpeg(ctx):
    for fmt in ("JPEG", "PNG", "WEBP"):
        clean = sanitize(photo(fmt=fmt), None)
        assert clean.content_type == "image/jpeg" and clean.data[:3] == b"\xff\xd8\xff"
        assert (clean.width, clean.height) == (800, 500)
        assert Image.open(io.BytesIO(clean.data)).size == (800, 500)


def test_oversize_upload_is_refused_with_413_and_a_translated_message(ctx):
    big = photo(1600, 1200, quality=100) + b"\x00" * 200_000
    error = rejected(big, "image/jpeg")
    assert (error.code, error.status) == ("too_large", 413)
    assert "0 MB" not in str(error.message) and "MB" in str(error.message)
    with force_locale("vi"):  # a message object, rendered in the citizen's language
        assert str(error.message)


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n1 0 obj<<>>endobj\n",
    b"<html><body>hello</body></html>",
    b"PK\x03\x04" + b"\x00" * 100,
    b"GIF89a" + b"\x00" * 100,
])
def test_non_images_are_refused_with_415(ctx, data):
    error = rejected(data, "image/jpeg")
    assert (error.code, error.status) == ("unsupported_type", 415)


def test_a_declared_type_that_contradicts_the_bytes_is_refused(ctx):
    assert rejected(photo(fmt="PNG"), "image/jpeg").code == "type_mismatch"
    assert rejected(photo(), "text/html").status == 415
    assert sanitize(photo(), "application/octet-stream").content_type == "image/jpeg"


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge size: a decompression bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * 3 * 16
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + \
        chunk(b"IDAT", zlib.compress(row * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(ctx):
    bomb = _png_header_only(50_000, 50_000)  # 2.5 gigapixels in a few hundred bytes
    assert len(bomb) < 1000
    error = rejected(bomb)
    assert (error.code, error.status) == ("too_many_pixels", 413)


def test_just_over_the_pixel_limit_is_refused(ctx):
    error = rejected(photo(1500, 1400))  # 2.1 MP > 2 MP
    assert error.code == "too_many_pixels"


@pytest.mark.parametrize("tail", [
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"A" * 50,  # a ZIP appended after EOI
    b"<script>alert(1)</script>",
    b"#!/bin/sh\nrm -rf /\n",
])
def test_jpeg_with_something_after_its_end_is_refused(ctx, tail):
    error = rejected(photo() + tail, "image/jpeg")
    assert (error.code, error.status) == ("polyglot", 415)


def test_png_with_data_after_iend_is_refused(ctx):
    error = rejected(photo(fmt="PNG") + b"PK\x03\x04 hidden archive")
    assert error.code == "polyglot"


def test_markup_hidden_in_a_jpeg_comment_is_refused(ctx):
    data = photo()
    comment = b"<html><script>steal()</script></html>"
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    error = rejected(data[:2] + segment + data[2:])
    assert error.code == "polyglot"


def test_zero_padding_after_the_image_is_tolerated(ctx):
    assert sanitize(photo() + b"\x00" * 16).width == 800


def test_truncated_image_is_refused_as_damaged(ctx):
    data = photo()
    error = rejected(data[: len(data) // 2])
    assert (error.code, error.status) == ("corrupt", 400)


def test_tiny_image_is_refused(ctx):
    assert rejected(photo(200, 150)).code == "too_small"


def test_empty_upload_is_refused(ctx):
    assert rejected(b"").code == "empty"


def test_exif_rotation_is_applied_then_exif_is_stripped(ctx):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (21.0, 2.0, 0.0)}  # GPS latitude: where the citizen lives
    original = photo(800, 500, exif=exif.tobytes())
    assert Image.open(io.BytesIO(original)).getexif()[0x0112] == 6
    clean = sanitize(original, "image/jpeg")
    assert (clean.width, clean.height) == (500, 800)  # upright
    image = Image.open(io.BytesIO(clean.data))
    assert image.size == (500, 800)
    assert not image.getexif() and "exif" not in image.info
    assert b"PhoneMaker" not in clean.data and b"Exif" not in clean.data


def test_transparent_png_is_flattened_on_white(ctx):
    image = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    clean = sanitize(out.getvalue())
    assert Image.open(io.BytesIO(clean.data)).convert("RGB").getpixel((10, 10))[0] > 240
