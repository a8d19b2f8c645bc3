"""Uploaded images: refuse what is not a plain photo, then re-encode what is.

In order: a size cap (413); the type sniffed from magic bytes, never trusted from the client
(JPEG, PNG and WebP only; 415); the container walked to its end marker so nothing hides after
it (a JPEG with a ZIP, HTML or script after EOI, a PNG with data after IEND: "polyglots", 415);
markup signatures refused anywhere; the pixel count read from the header BEFORE decoding
(decompression bombs, UPLOAD_MAX_PIXELS, 413); a full decode (truncated or corrupt files, 400);
the EXIF orientation applied; and a fresh JPEG encoded from the pixels, so EXIF (GPS, device
serials), ICC profiles, comments and anything else in the original are gone.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
ALLOWED = (JPEG, PNG, WEBP)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "image/x-png": PNG}
_GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")
# Markup or code that must never be inside an image we keep (long enough never to occur by
# chance in compressed data).
_MARKUP = (b"<script", b"<html", b"<!doctype", b"<?php", b"<svg", b"<iframe", b"javascript:")
_PILLOW_FORMAT = {"JPEG": JPEG, "PNG": PNG, "WEBP": WEBP, "MPO": JPEG}

MESSAGES = {
    "empty": _l("The file is empty. Choose a photo and try again."),
    "too_large": _l("The photo is too large. Use a smaller photo."),
    "unsupported_type": _l("This file is not a photo we accept. Use a JPEG, PNG or WebP photo."),
    "type_mismatch": _l("The file's content does not match its type. Take a new photo."),
    "polyglot": _l("This file contains more than a photo. Take a new photo with your camera."),
    "too_many_pixels": _l("The photo has too many pixels. Use a smaller photo."),
    "too_small": _l("The photo is too small to read. Take it closer and in better focus."),
    "corrupt": _l("The photo could not be read. It may be damaged; take a new photo."),
    "animated": _l("Animated images are not accepted. Use a single photo."),
}
STATUS = {"too_large": 413, "too_many_pixels": 413, "unsupported_type": 415,
          "type_mismatch": 415, "polyglot": 415, "animated": 415}


class UploadRejected(Exception):
    """An upload refused before anything was stored: `code`, translated `message`, HTTP status."""

    def __init__(self, code: str, message=None, status: int | None = None):
        super().__init__(code)
        self.code = code
        self.message = message if message is not None else MESSAGES[code]
        self.status = status or STATUS.get(code, 400)

    def __str__(self) -> str:
        return str(self.message)


@dataclass(frozen=True)
class CleanImage:
    """A re-encoded image: JPEG bytes without metadata, upright, with its size."""

    data: bytes
    width: int
    height: int
    source_type: str
    content_type: str = JPEG


def sniff(data: bytes) -> str | None:
    """The image type by magic bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == _PNG_SIGNATURE:
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def _jpeg_end(data: bytes) -> int:
    """Offset just after the JPEG's EOI marker, walking segments and entropy-coded data."""
    pos, size = 2, len(data)
    while pos < size:
        if data[pos] != 0xFF:
            raise ValueError("marker expected")
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            continue
        if pos + 2 > size:
            break
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if length < 2:
            raise ValueError("bad segment length")
        pos += length
        if marker == 0xDA:  # SOS: entropy-coded data runs to the next real marker
            while pos + 1 < size:
                if data[pos] == 0xFF and data[pos + 1] != 0x00 and \
                        not 0xD0 <= data[pos + 1] <= 0xD7:
                    break
                pos += 1
    raise ValueError("no end of image")


def _png_end(data: bytes) -> int:
    """Offset just after the IEND chunk."""
    pos, size = 8, len(data)
    while pos + 8 <= size:
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos
    raise ValueError("no IEND chunk")


def _webp_end(data: bytes) -> int:
    """Offset just after the RIFF container (its size field plus the 8-byte header)."""
    (length,) = struct.unpack("<I", data[4:8])
    return 8 + length + (length & 1)


_ENDS = {JPEG: _jpeg_end, PNG: _png_end, WEBP: _webp_end}


def _refuse_polyglot(data: bytes, kind: str) -> None:
    try:
        end = _ENDS[kind](data)
    except (ValueError, struct.error) as exc:
        raise UploadRejected("corrupt") from exc
    # Phones write multi-picture JPEGs (MPO: more JPEGs after the first); each must be whole.
    while kind == JPEG and data[end:end + 3] == b"\xff\xd8\xff":
        try:
            end += _jpeg_end(data[end:])
        except (ValueError, struct.error) as exc:
            raise UploadRejected("polyglot") from exc
    # Some encoders pad with zeros; anything else after the end marker is another file.
    if data[end:].strip(b"\x00"):
        raise UploadRejected("polyglot")
    lowered = data.lower()
    if any(sig in lowered for sig in _MARKUP):
        raise UploadRejected("polyglot")


def _declared(content_type: str | None) -> str:
    value = (content_type or "").split(";")[0].strip().lower()
    return _ALIASES.get(value, value)


def _limits() -> tuple[int, int, int]:
    conf = current_app.config
    return conf["UPLOAD_MAX_BYTES"], conf["UPLOAD_MAX_PIXELS"], conf["UPLOAD_MIN_SIDE"]


def sanitize(data: bytes, content_type: str | None = None, *, quality: int = 95,
             min_side: int | None = None) -> CleanImage:
    """Check an uploaded image and return it re-encoded, or raise `UploadRejected`."""
    max_bytes, max_pixels, default_min_side = _limits()
    min_side = default_min_side if min_side is None else min_side
    if not data:
        raise UploadRejected("empty")
    if len(data) > max_bytes:
        size = f"{max_bytes / (1024 * 1024):.1f}".removesuffix(".0")
        raise UploadRejected("too_large", _l("The photo is too large. Use a photo smaller than "
                                             "%(size)s MB.", size=size))
    kind = sniff(data)
    if kind is None:
        raise UploadRejected("unsupported_type")
    declared = _declared(content_type)
    if declared not in _GENERIC_TYPES and declared != kind:
        raise UploadRejected("type_mismatch" if declared in ALLOWED else "unsupported_type")
    _refuse_polyglot(data, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if _PILLOW_FORMAT.get(image.format or "") != kind:
                raise UploadRejected("type_mismatch")
            width, height = image.size
            if width * height > max_pixels:  # before decoding a single pixel
                raise UploadRejected("too_many_pixels")
            if getattr(image, "n_frames", 1) > 1 and kind != JPEG:  # MPO keeps frame 0
                raise UploadRejected("animated")
            image.load()
            upright = ImageOps.exif_transpose(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UploadRejected("too_many_pixels") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
            raise UploadRejected("corrupt") from exc
    if min(upright.size) < min_side:
        raise UploadRejected("too_small")
    if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and
                                               "transparency" in upright.info):
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        upright = flat
    elif upright.mode != "RGB":
        upright = upright.convert("RGB")
    out = io.BytesIO()
    # A fresh encode from pixels only: no exif=, icc_profile= or comment= is passed on.
    upright.save(out, "JPEG", quality=quality, subsampling=0, optimize=True)
    return CleanImage(out.getvalue(), upright.size[0], upright.size[1], kind)
