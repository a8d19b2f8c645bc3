"""Read a Vietnamese chip ID card (CCCD 2021) from photos of its front and back.

`read_document(front, back)` is a pure function (no Flask, no database):

1. decode each photo safely (`imaging.decode_image`: caps, EXIF rotation), find the card and
   warp it to the canonical layout, turn it upright (QR texture on the front, MRZ lines on the
   back), measure capture quality (blur, glare, resolution, card fully in frame);
2. QR code: OpenCV's detector on the QR area, zxing-cpp as the fallback, then the whole photo;
   the payload is parsed by `qr_payload.parse_cccd_qr`;
3. MRZ: Tesseract on the MRZ band (`ocr.ocr_mrz`), then a repair that only uses what the
   Vietnamese TD1 layout fixes: letters read in digit positions become the look-alike digit
   (O->0, I->1, B->8, S->5, Z->2 ...), digits in name positions the look-alike letter, the
   fixed `IDVNM`, `VNM` and `<` filler positions their fixed value (`<` is often read `K`).
   A digit is never changed into another digit, so a wrong check digit cannot be "repaired"
   away. When check digits still fail, a second OCR pass with other preprocessing (and the
   other orientation) is tried and the best-checking result kept;
4. printed fields: Tesseract `vie` on the known field regions (one run). OCR text within OCR
   noise of the machine-readable value (a name or address at most `_SNAP` edits away once
   diacritics are removed) is reported as that value; text clearly different is reported as
   read (the cross-check flags it); text in between is left out (`printed_raw` keeps it);
5. portrait: the portrait region of the upright front (JPEG). When the population register's
   portrait of the card's number is given (`register_portrait`), the two are compared with
   the face matcher (`ekyc.face`, dlib) at its calibrated strict threshold: a distance at or
   above it (`portrait_register_mismatch`) or no face on the card (`portrait_no_face`) is a
   `review` finding, since a swapped portrait (another person's face on a genuine-looking
   card) is visible nowhere else on the card. The comparison (distance, threshold, model and
   version) is recorded in `portrait_check`; without a register portrait the card is not
   checked and says so. `compare_register_portrait` is the same comparison on its own, for a
   pipeline that learns the number (and may ask the register) only after reading the card;
6. `checks.cross_check` plus capture-quality findings; `national_id` is set only when two
   sources agree (QR and MRZ; the printed number corroborates or breaks a tie).

Unusable input raises `imaging.ImageError` (code: empty, too_large, not_an_image,
too_many_pixels, truncated, too_small); OCR failures become findings, never exceptions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import zxingcpp

from ekyc.document import imaging, ocr
from ekyc.document.checks import Finding, cross_check
from ekyc.document.imaging import FRONT_REGIONS, ImageError
from ekyc.document.mrz import MRZResult, check_digit, parse_mrz, transliterate
from ekyc.document.qr_payload import QRPayload, QRPayloadError, parse_cccd_qr

READER_VERSION = "cccd2021-reader/1"

# Findings of the reader itself (capture quality, OCR), besides `checks.FINDINGS`.
READER_FINDINGS: dict[str, tuple[str, str]] = {
    "quality_card_not_in_frame": ("review", "the card is not fully inside the photo"),
    "quality_resolution": ("review", "the card is too small in the photo to be read reliably"),
    "quality_blur": ("review", "the photo of the card is too blurred"),
    "quality_glare": ("review", "glare covers part of the card"),
    "qr_unreadable": ("review", "a QR code was read but its content is not a card payload"),
    "qr_not_found": ("review", ("no QR code could be read on the front, so the QR-MRZ "
                                "cross-check is incomplete (retake the photo)")),
    "national_id_unconfirmed": ("review", ("the ID number could not be confirmed by two "
                                           "sources (QR, MRZ, printed)")),
    "portrait_no_face": ("review", ("no face was found in the card's portrait, so it could not "
                                    "be compared with the register's portrait")),
    "portrait_register_mismatch": ("review", ("the card's portrait does not match the "
                                              "population register's portrait of this number "
                                              "(another person's face?)")),
    "portrait_register_unusable": ("review", ("the register's portrait shows no detectable "
                                              "face: the card's portrait could not be compared")),
    "ocr_failed": ("review", "the OCR engine failed or timed out"),
}

_CLEAN_BLUR = 800.0  # back-side sharpness above which the MRZ counts as cleanly imaged
BACK_MRZ = imaging.BACK_REGIONS["mrz"]
_SNAP = 1  # edits (diacritics removed) within which printed text counts as the reference
_FAR = 3  # edits from which printed text is reported as different


def _finding(code: str, detail: str = "") -> Finding:
    return Finding(code, READER_FINDINGS[code][0], detail)


@dataclass
class DocumentReading:
    """Everything read from one card. `to_dict()` is JSON-safe (without the portrait bytes)."""

    qr: dict | None = None
    mrz: dict | None = None
    printed: dict = field(default_factory=dict)
    printed_raw: dict = field(default_factory=dict)
    portrait_jpeg: bytes | None = None
    portrait_box: list[int] | None = None
    portrait_face: list[int] | None = None
    portrait_check: dict = field(default_factory=lambda: dict(NOT_CHECKED))
    quality: dict = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    national_id: str | None = None
    timings_ms: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    def worst(self) -> str | None:
        """The most severe finding's severity ('reject', 'review', 'warn') or None."""
        order = {"warn": 0, "review": 1, "reject": 2}
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=order.__getitem__)

    def to_dict(self) -> dict:
        """JSON-safe form (dates as ISO strings; the portrait as its box only)."""
        return {
            "national_id": self.national_id,
            "qr": self.qr,
            "mrz": self.mrz,
            "printed": self.printed,
            "printed_raw": self.printed_raw,
            "portrait": {"box": self.portrait_box, "face": self.portrait_face,
                         "present": self.portrait_jpeg is not None},
            "portrait_check": self.portrait_check,
            "quality": self.quality,
            "findings": [f.to_dict() for f in self.findings],
            "worst_severity": self.worst(),
            "timings_ms": self.timings_ms,
            "versions": self.versions,
        }


def versions() -> dict:
    """Versions of the reader and the engines it uses."""
    return {"reader": READER_VERSION, "tesseract": ocr.tesseract_version(),
            "opencv": cv2.__version__, "zxing": getattr(zxingcpp, "__version__", "unknown")}


# --- small helpers ---------------------------------------------------------------------------
def distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


class _Clock:
    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.out: dict[str, int] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.out[name] = self.out.get(name, 0) + round((now - self.t) * 1000)
        self.t = now


# --- the card sides --------------------------------------------------------------------------
@dataclass
class _Side:
    image: np.ndarray  # the decoded photo (upright per EXIF)
    card: np.ndarray  # the canonical card, upright when `upright_known`
    quad: imaging.CardQuad
    quality: imaging.Quality


def _prepare(data: bytes) -> tuple[np.ndarray, imaging.CardQuad, np.ndarray]:
    image = imaging.decode_image(data)
    quad = imaging.detect_card(image)
    if not quad.found or quad.touches_border:
        h, w = image.shape[:2]
        aspect = max(w, h) / min(w, h)
        if abs(aspect - imaging.CARD_ASPECT) / imaging.CARD_ASPECT < 0.06:
            # A scan or a photo cropped to the card: the whole image is the card.
            corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
            quad = imaging.CardQuad(imaging._order(corners), found=True, touches_border=False)
    return image, quad, imaging.rectify(image, quad)


# --- QR --------------------------------------------------------------------------------------
_QR = cv2.QRCodeDetector()


def _decode_qr(img: np.ndarray) -> tuple[str | None, str | None, np.ndarray | None]:
    """(text, decoder, corner points) of the first QR code found, OpenCV then zxing-cpp."""
    try:
        text, points, _ = _QR.detectAndDecode(img)
    except cv2.error:
        text, points = "", None
    if text:
        return text, "opencv", None if points is None else np.asarray(points).reshape(-1, 2)
    try:
        found = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    except (RuntimeError, ValueError):
        found = []
    for code in found:
        if code.text:
            p = code.position
            pts = np.array([[p.top_left.x, p.top_left.y], [p.top_right.x, p.top_right.y],
                            [p.bottom_right.x, p.bottom_right.y],
                            [p.bottom_left.x, p.bottom_left.y]], np.float32)
            return code.text, "zxing-cpp", pts
    return None, None, None


def _read_qr(card: np.ndarray, photo: np.ndarray) -> tuple[str | None, str | None, str]:
    """(text, decoder, where) from the QR area of the card, else from the whole photo."""
    x0, y0, x1, y1 = FRONT_REGIONS["qr"]
    m = 24
    area = card[max(0, y0 - m):y1 + m, max(0, x0 - m):min(imaging.CARD_W, x1 + m)]
    text, decoder, _ = _decode_qr(area)
    if text:
        return text, decoder, "card"
    gray = cv2.cvtColor(area, cv2.COLOR_BGR2GRAY)
    for factor, amount, sigma in ((2, 0.8, 3), (3, 1.5, 4)):  # upscale and unsharp-mask
        big = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        sharp = cv2.addWeighted(big, 1 + amount, cv2.GaussianBlur(big, (0, 0), sigma), -amount,
                                0)
        text, decoder, _ = _decode_qr(sharp)
        if text:
            return text, decoder, "card-sharpened"
    text, decoder, _ = _decode_qr(photo)
    return text, decoder, "photo"


# --- MRZ -------------------------------------------------------------------------------------
_TO_DIGIT = str.maketrans("OQDUIJLZSBGAT", "0000111258647")
_TO_ALPHA = str.maketrans("0125864", "OIZSBGA")
_D = "[0-9A-Z]"


def _digits(text: str) -> str | None:
    out = text.translate(_TO_DIGIT)
    return out if out.isdigit() else None


def _line1(lines: list[str]) -> str | None:
    for line in lines:
        m = re.search(rf"({_D}{{22}})[<K]{{1,4}}({_D})$", line)
        if m and len(line) - len(m.group(0)) >= 3:
            body, check = _digits(m.group(1)), _digits(m.group(2))
            if body and check:
                return f"IDVNM{body}<<{check}"
    return None


def _line2(lines: list[str]) -> tuple[str, int] | None:
    for i, line in enumerate(lines):
        m = re.match(rf"^.{{0,2}}?({_D}{{7}})([A-Z<])({_D}{{7}})([A-Z]{{3}})[<KC]{{4,16}}({_D})$",
                     line)
        if not m:
            continue
        birth, expiry, check = _digits(m.group(1)), _digits(m.group(3)), _digits(m.group(5))
        sex = {"M": "M", "H": "M", "N": "M", "F": "F", "E": "F", "P": "F"}.get(m.group(2))
        if birth and expiry and check and sex:
            return f"{birth}{sex}{expiry}VNM{'<' * 11}{check}", i
    return None


def name_line(full_name: str) -> str:
    """The TD1 name line of a Vietnamese full name (family name first), 30 characters."""
    parts = transliterate(full_name).split()
    if not parts:
        return "<" * 30
    text = parts[0] + ("<<" + "<".join(parts[1:]) if len(parts) > 1 else "")
    return text[:30].ljust(30, "<")


def _name_key(line: str) -> str:
    return re.sub("<+", "<", line.replace("K", "<")).strip("<")


def _line3(lines: list[str], after: int | None, reference_name: str | None) -> str | None:
    candidates = lines[after + 1:] if after is not None else lines[-1:]
    if not candidates:
        return None
    raw = candidates[0].translate(_TO_ALPHA)
    if reference_name:
        expected = name_line(reference_name)
        if _name_key(raw) == _name_key(expected):
            return expected  # identical but for '<' read as 'K' and the filler count
    # Without a reference: fillers after the last word of 2+ letters, lone 'K's between fillers.
    m = re.match(r"^(.*?[A-Z]{2,})[<KC]*$", raw)
    text = m.group(1) if m else raw
    text = re.sub(r"(?<=<)K(?=<)", "<", text)
    return text[:30].ljust(30, "<")


def repair_vn_td1(lines: list[str], reference_name: str | None = None) -> list[str] | None:
    """The three lines of a Vietnamese TD1 MRZ rebuilt from OCR lines (see the module
    docstring for what is repaired), or None when the lines do not have that shape."""
    l1 = _line1(lines)
    found = _line2(lines)
    if l1 is None or found is None:
        return None
    l2, index = found
    l3 = _line3(lines, index, reference_name)
    return [l1, l2, l3] if l3 else None


def _line1_ok(line: str) -> bool:
    """Both check digits hold and the document number is the ID's last 9 digits (always so
    on a real card; a shifted OCR reading can pass the check digits by chance)."""
    return (check_digit(line[5:14]) == line[14] and check_digit(line[15:27]) == line[29]
            and line[5:14] == line[18:27])


def _line2_ok(line: str) -> bool:
    return check_digit(line[0:6]) == line[6] and check_digit(line[8:14]) == line[14]


def _composite_ok(l1: str, l2: str) -> bool:
    return check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]) == l2[29]


def _trusted(lines: list[str], ok, clean: bool) -> str | None:
    """The first line whose check digits hold; else a line read identically by two or more
    passes, when the MRZ was imaged cleanly (the most frequent reading) or by every pass
    otherwise (glare or blur can make passes repeat the same slip); else None."""
    passing = next((x for x in lines if ok(x)), None)
    if passing:
        return passing
    if len(lines) < 2:
        return None
    top = max(set(lines), key=lines.count)
    repeats = lines.count(top)
    if repeats == len(lines) or (clean and repeats >= 2 and repeats * 2 > len(lines)):
        return top
    return None


@dataclass
class _MRZCandidates:
    """Repaired lines from several OCR passes. Each field carries its own check digit, so the
    lines of different passes can be combined; a digit is never guessed."""

    line1: list[str] = field(default_factory=list)
    line2: list[str] = field(default_factory=list)
    line3: list[str] = field(default_factory=list)

    def add(self, raw: list[str], reference_name: str | None) -> None:
        l1, found = _line1(raw), _line2(raw)
        if l1:
            self.line1.append(l1)
        if found:
            self.line2.append(found[0])
        l3 = _line3(raw, found[1] if found else None, reference_name)
        if l3:
            self.line3.append(l3)

    def _name(self, reference_name: str | None) -> str | None:
        expected = name_line(reference_name) if reference_name else None
        if expected in self.line3:
            return expected
        clean = [line for line in self.line3 if "?" not in line]
        chosen = clean[0] if clean else (self.line3[0] if self.line3 else None)
        return chosen.replace("?", "<") if chosen else None

    def complete(self, reference_name: str | None) -> list[str] | None:
        """Three lines whose every check digit holds (and whose name line is the expected
        one when a reference name is given), or None."""
        name = self._name(reference_name)
        if name is None or (reference_name and name != name_line(reference_name)):
            return None
        for l1 in dict.fromkeys(x for x in self.line1 if _line1_ok(x)):
            for l2 in dict.fromkeys(x for x in self.line2 if _line2_ok(x)):
                if _composite_ok(l1, l2):
                    return [l1, l2, name]
        return None

    def best(self, reference_name: str | None, clean: bool) -> list[str] | None:
        """Three lines even when a check fails, provided every line is trustworthy (see
        `_trusted`: a forged check digit reads the same in every pass, OCR slips vary).
        None otherwise (unreadable)."""
        name = self._name(reference_name)
        l1 = _trusted(self.line1, _line1_ok, clean)
        l2s = [x for x in self.line2 if _line2_ok(x)]
        if not l2s:
            repeated = _trusted(self.line2, lambda _: False, clean)
            l2s = [repeated] if repeated else []
        if l1 is None or not l2s or name is None:
            return None
        l2 = next((x for x in l2s if _composite_ok(l1, x)), None)
        if l2 is None:  # the composite fails: believe it only when both lines repeat
            l2 = l2s[0]
            if _trusted(self.line1, lambda _: False, clean) != l1 or \
                    _trusted(self.line2, lambda _: False, clean) != l2:
                return None
        return [l1, l2, name]

    def line1_id(self) -> str | None:
        """The 12-digit number of a line 1 whose two check digits hold."""
        return next((x[15:27] for x in self.line1 if _line1_ok(x)), None)


def _has_fillers(band: np.ndarray) -> bool:
    """Cheap test before any OCR: a Vietnamese MRZ shows at least 13 '<' fillers."""
    binary = ocr.binarize(band)
    cap = ocr.cap_height(binary)
    return cap is not None and len(ocr.find_chevrons(binary, cap)) >= 8


def _read_mrz(card_gray: np.ndarray, upside_down: bool | None, reference_name: str | None,
              today: date, clean: bool = True
              ) -> tuple[MRZResult | None, list[str], int, str | None]:
    """(MRZ result, raw OCR lines, Tesseract runs, 12-digit number of a checked line 1).
    `clean`: the MRZ band shows no glare or blur (a repeated failing line is then believed)."""
    passes, bands = [], []
    for turned in [bool(upside_down)] + ([not upside_down] if upside_down is None else []):
        gray = imaging.rotate180(card_gray) if turned else card_gray
        span = imaging.mrz_rows(gray)
        x0, y0, x1, y1 = imaging.BACK_REGIONS["mrz"]
        if span is not None and not span[2] and span[1] - span[0] > 100:
            y0, y1 = max(0, span[0] - 14), min(gray.shape[0], span[1] + 14)
        band = gray[y0:y1, x0:x1]
        bands.append(band)
        passes.append([
            lambda b=band: ocr.ocr_mrz_columns(b),
            lambda b=band: ocr.ocr_mrz(cv2.copyMakeBorder(b, 20, 20, 20, 20,
                                                          cv2.BORDER_REPLICATE)),
            lambda b=band: ocr.ocr_mrz(ocr.prepare_mrz(b)),
        ])
    if upside_down is None and not any(_has_fillers(band) for band in bands):
        return parse_mrz([], today=today), [], 0, None  # no MRZ lines, no fillers: not an MRZ
    order = [p for group in zip(*passes, strict=True) for p in group]
    candidates = _MRZCandidates()
    raws: list[list[str]] = []
    lines = None
    for k, run in enumerate(order):
        raw = run()
        raws.append(raw)
        candidates.add(raw, reference_name)
        lines = candidates.complete(reference_name)
        if lines:
            break
        if k + 1 == len(passes) and not any(len(r) >= 2 for r in raws):
            break  # not even two text lines in any orientation: no MRZ here, stop early
    runs = len(raws)
    lines = lines or candidates.best(reference_name, clean)
    raw_all = [line for raw in raws for line in raw]
    if lines is None:  # nothing trustworthy: unreadable (never checked as if it were read)
        if not raw_all:
            return None, [], runs, None
        return parse_mrz([], today=today), raw_all, runs, candidates.line1_id()
    return parse_mrz(lines, today=today), raw_all, runs, candidates.line1_id()


# --- printed fields --------------------------------------------------------------------------
_DATE_FIX = str.maketrans("OoIlSB", "001158")
_DIGIT_REGIONS = ("id_number", "birth_date", "expiry_date")
_DIGITS_ONLY = " -c tessedit_char_whitelist=0123456789/"
_PRINTED_REGIONS = ("id_number", "full_name", "birth_date", "sex", "residence", "expiry_date")


def _ocr_date(text: str) -> str | None:
    digits = (text or "").translate(_DATE_FIX)
    digits = re.sub(r"\D", "", digits)
    if len(digits) != 8:
        return None
    try:
        return date(int(digits[4:]), int(digits[2:4]), int(digits[:2])).isoformat()
    except ValueError:
        return None


def _ocr_sex(text: str) -> str | None:
    key = transliterate(text or "").replace(" ", "")
    if key in ("NAM", "NAN", "HAM"):
        return "M"
    if key in ("NU", "NÚ", "NO", "NUU"):
        return "F"
    return None


def _reconcile(read: str, reference: str | None, *, compact: bool = False) -> str | None:
    """`reference` when `read` is within OCR noise of it, `read` when clearly different,
    None when unsure (or nothing read)."""
    if not read or not read.strip():
        return None
    if reference is None:
        return read
    a, b = transliterate(read), transliterate(reference)
    if compact:
        a, b = a.replace(" ", ""), b.replace(" ", "")
    d = distance(a, b)
    tolerance = max(_SNAP, len(b) // 12) if compact else _SNAP
    if d <= tolerance:
        return reference
    if d >= max(_FAR, 2 * tolerance + 1):
        return read
    return None


def _id_digits(text: str | None) -> str | None:
    digits = re.sub(r"\D", "", (text or "").translate(_TO_DIGIT))
    return digits if len(digits) == 12 else None


def _agree(first: str | None, second: str | None, reference: str | None) -> str | None:
    """A printed value read by two OCR passes (`vie` and digits-only `eng`): the machine-readable
    reference when either pass reads it (the other one erred), else the value both passes agree
    on (a printed text that really differs), else None (OCR too unsure to say)."""
    if reference is not None and reference in (first, second):
        return reference
    return first if first is not None and first == second else None


def _printed(texts: dict[str, str], digits: dict[str, str], qr: QRPayload | None,
             mrz: MRZResult | None, line1_id: str | None) -> dict:
    out: dict = {}
    mrz_f = mrz.fields if mrz is not None else {}
    ref_id = qr.national_id if qr else (mrz_f.get("national_id") or line1_id)
    value = _agree(_id_digits(texts.get("id_number")), _id_digits(digits.get("id_number")),
                   ref_id)
    if value:
        out["national_id"] = value
    mrz_name = None
    if mrz_f.get("surname"):
        mrz_name = " ".join(filter(None, (mrz_f.get("surname"), mrz_f.get("given_names"))))
    name = " ".join((texts.get("full_name") or "").split())
    value = _reconcile(name, qr.full_name if qr is not None else mrz_name)
    if value:
        out["full_name"] = value
    ref_birth = qr.birth.isoformat() if qr else mrz_f.get("birth_date")
    value = _agree(_ocr_date(texts.get("birth_date", "")),
                   _ocr_date(digits.get("birth_date", "")), ref_birth)
    if value:
        out["date_of_birth"] = value
    sex = _ocr_sex(texts.get("sex", ""))
    if sex:
        out["sex"] = sex
    residence = " ".join((texts.get("residence") or "").split())
    if qr is not None and qr.address:
        value = _reconcile(residence, qr.address, compact=True)
        if value:
            out["place_of_residence"] = value
    expiry_text = texts.get("expiry_date", "")
    if transliterate(expiry_text).lower().startswith("khong"):
        out["expiry"] = "Không thời hạn"
    else:
        value = _agree(_ocr_date(expiry_text), _ocr_date(digits.get("expiry_date", "")),
                       mrz_f.get("expiry_date") if mrz_f.get("national_id") else None)
        if value:
            out["expiry"] = value
    return out


def _retry_printed_id(card: np.ndarray, reading: DocumentReading, qr: QRPayload | None,
                      mrz: MRZResult | None, line1_id: str | None) -> None:
    """One more OCR pass on the printed number (upscaled, sharpened, one text line), used only
    to confirm the machine-readable number; a different reading changes nothing."""
    reference = qr.national_id if qr else ((mrz.fields.get("national_id") if mrz else None)
                                           or line1_id)
    if reference is None:
        return
    big = cv2.resize(imaging.crop(card, FRONT_REGIONS["id_number"]), None, fx=2, fy=2,
                     interpolation=cv2.INTER_CUBIC)
    sharp = cv2.addWeighted(big, 2.0, cv2.GaussianBlur(big, (0, 0), 3), -1.0, 0)
    try:
        text = ocr.ocr_line(sharp, whitelist="0123456789")
    except ocr.OCRError:
        return
    reading.printed_raw["id_number_retry"] = text
    if _id_digits(text) == reference:
        reading.printed["national_id"] = reference


# --- portrait against the register ---------------------------------------------------------
NOT_CHECKED = {"checked": False, "why": "no register portrait given"}
_LIMITS: dict = {}


def _limits(matcher):
    """The matcher's calibrated thresholds (cached per model)."""
    from ekyc.face import load_thresholds

    if matcher.model not in _LIMITS:
        _LIMITS[matcher.model] = load_thresholds(matcher.model)
    return _LIMITS[matcher.model]


def compare_register_portrait(card_portrait: bytes | np.ndarray | None,
                              register_portrait: bytes, *, matcher=None, thresholds=None,
                              encodings: dict | None = None) -> tuple[dict, list[Finding]]:
    """Compare the card's portrait crop (JPEG bytes or RGB array) with the register's portrait
    of the card's number: (record for `DocumentReading.portrait_check`, findings).

    `outcome` is `match` (distance below the strict threshold), `mismatch`
    (`portrait_register_mismatch`), `no_face` (none on the card: `portrait_no_face`) or
    `register_no_face` (`portrait_register_unusable`); every one but `match` is a review
    finding. The matcher defaults to `ekyc.face.default_matcher()` and its thresholds file.
    When `encodings` (a dict) is given, the faces found are left in it under "card" and
    "register", so the selfie comparison need not encode the two portraits again."""
    from ekyc.face import FaceImageError, default_matcher

    matcher = matcher or default_matcher()
    limits = thresholds or _limits(matcher)
    record = {"checked": True, "outcome": None, "distance": None, "threshold": limits.strict,
              "model": matcher.model.name, "model_version": matcher.model.version,
              "provisional": limits.provisional, "card_face": None}
    try:
        card = matcher.encode(card_portrait) if card_portrait is not None else None
    except FaceImageError:
        card = None
    if card is None:
        record["outcome"] = "no_face"
        return record, [_finding("portrait_no_face")]
    record["card_face"] = list(card.box)
    if encodings is not None:
        encodings["card"] = card
    try:
        reference = matcher.encode(register_portrait)
    except FaceImageError as exc:
        reference = None
        record["register_error"] = exc.code
    if reference is None:
        record["outcome"] = "register_no_face"
        return record, [_finding("portrait_register_unusable")]
    if encodings is not None:
        encodings["register"] = reference
    distance = matcher.distance(card, reference)
    record["distance"] = round(distance, 4)
    if distance < limits.strict:
        record["outcome"] = "match"
        return record, []
    record["outcome"] = "mismatch"
    return record, [_finding("portrait_register_mismatch",
                             f"distance {distance:.3f} >= strict {limits.strict:.3f}")]


# --- the whole card --------------------------------------------------------------------------
def _choose_id(qr: QRPayload | None, mrz: MRZResult | None, printed: dict,
               line1_id: str | None = None) -> str | None:
    """The number two sources agree on (QR, MRZ line 1 with its two check digits, printed).

    One exception: with no QR read at all, a fully valid Vietnamese MRZ (every check digit,
    the composite included, and every cross-check of the number against the birth date and
    sex) is taken on its own: three check digits protect its number, while the printed text of
    a blurred photo is the weakest source. The missing QR is a review finding whatever this
    returns, so such a card still goes to an operator; a QR that disagrees is never overruled.
    """
    qr_id = qr.national_id if qr else None
    mrz_id = line1_id
    if mrz is not None and mrz.checks.get("national_id") and mrz.checks.get("document_number"):
        mrz_id = mrz.fields.get("national_id")
    printed_id = printed.get("national_id")
    if qr_id and qr_id == mrz_id:
        return qr_id
    for candidate in (qr_id, mrz_id):
        if candidate and candidate == printed_id:
            return candidate
    if qr is None and mrz is not None and mrz.is_vietnamese and mrz.valid and mrz_id:
        return mrz_id
    return None


def read_document(front: bytes, back: bytes | None = None, *, today: date | None = None,
                  register_portrait: bytes | None = None) -> DocumentReading:
    """Read a card from its front photo and (optionally) its back photo. Raises
    `ImageError` for unusable images; everything else is reported in the reading.
    `register_portrait`: the population register's portrait of the card's number, compared
    with the card's portrait (see the module docstring, step 5)."""
    today = today or date.today()
    clock = _Clock()
    reading = DocumentReading(versions=versions())
    findings: list[Finding] = []
    image, quad, card = _prepare(front)
    clock.lap("front_detect")
    text, decoder, where = _read_qr(card, image)
    qr = None
    if text:
        try:
            qr = parse_cccd_qr(text)
            reading.qr = {"payload": qr.to_dict(), "decoder": decoder, "where": where}
        except QRPayloadError as exc:
            reading.qr = {"payload": None, "decoder": decoder, "error": exc.code}
            findings.append(_finding("qr_unreadable", exc.code))
    else:
        findings.append(_finding("qr_not_found"))
    clock.lap("qr")
    gray = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY)
    if imaging.front_is_upside_down(gray):
        card = imaging.rotate180(card)
    quality = {"front": imaging.measure_quality(card, quad)}
    x0, y0, x1, y1 = FRONT_REGIONS["portrait"]
    portrait = card[y0:y1, x0:x1]
    ok, jpeg = cv2.imencode(".jpg", portrait, [cv2.IMWRITE_JPEG_QUALITY, 90])
    reading.portrait_jpeg = jpeg.tobytes() if ok else None
    reading.portrait_box = [x0, y0, x1 - x0, y1 - y0]
    clock.lap("portrait")
    if register_portrait is not None:
        reading.portrait_check, found = compare_register_portrait(reading.portrait_jpeg,
                                                                  register_portrait)
        reading.portrait_face = reading.portrait_check.get("card_face")
        findings.extend(found)
        clock.lap("portrait_check")

    mrz, line1_id = None, None
    if back is not None:
        _, b_quad, b_card = _prepare(back)
        b_gray = cv2.cvtColor(b_card, cv2.COLOR_BGR2GRAY)
        upside_down = imaging.back_is_upside_down(b_gray)
        quality["back"] = imaging.measure_quality(
            imaging.rotate180(b_card) if upside_down else b_card, b_quad)
        clock.lap("back_detect")
        try:
            upright = imaging.rotate180(b_card) if upside_down else b_card
            clean = (quality["back"].blur >= _CLEAN_BLUR
                     and imaging.glare_fraction(imaging.crop(upright, BACK_MRZ)) < 0.002)
            mrz, raw, runs, line1_id = _read_mrz(b_gray, upside_down,
                                                 qr.full_name if qr else None, today, clean)
            reading.mrz = {**mrz.to_dict(), "raw_lines": raw, "ocr_runs": runs} if mrz else None
        except ocr.OCRError as exc:
            findings.append(_finding("ocr_failed", f"MRZ: {exc.code}"))
        clock.lap("mrz")

    crops = {name: imaging.crop(card, FRONT_REGIONS[name]) for name in _PRINTED_REGIONS}
    digit_crops = {name: cv2.resize(crops[name], None, fx=1.5, fy=1.5,
                                    interpolation=cv2.INTER_CUBIC) for name in _DIGIT_REGIONS}
    try:
        texts = ocr.ocr_fields(crops, binary_input=False)
        digits = ocr.ocr_fields(digit_crops, lang="eng", config_extra=_DIGITS_ONLY,
                                binary_input=False)
    except ocr.OCRError as exc:
        texts, digits = {}, {}
        findings.append(_finding("ocr_failed", f"printed fields: {exc.code}"))
    reading.printed_raw = {**texts, **{f"{k}_digits": v for k, v in digits.items()}}
    usable_mrz = mrz if mrz is not None and mrz.format is not None else None
    reading.printed = _printed(texts, digits, qr, usable_mrz, line1_id)
    clock.lap("printed")

    findings = cross_check(qr, usable_mrz if usable_mrz is not None else mrz, reading.printed,
                           today) + findings
    for side, q in quality.items():
        for code in q.problems():
            findings.append(_finding(code, side))
    reading.quality = {side: q.to_dict() for side, q in quality.items()}
    reading.national_id = _choose_id(qr, usable_mrz, reading.printed, line1_id)
    if reading.national_id is None and "national_id" not in reading.printed:
        _retry_printed_id(card, reading, qr, usable_mrz, line1_id)
        reading.national_id = _choose_id(qr, usable_mrz, reading.printed, line1_id)
    if reading.national_id is None:
        findings.append(_finding("national_id_unconfirmed"))
    reading.findings = findings
    clock.lap("checks")
    reading.timings_ms = clock.out
    return reading


# --- command line ----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `ekyc read-document`."""
    parser.add_argument("front", help="photo of the card front (JPEG, PNG or WebP)")
    parser.add_argument("back", nargs="?", help="photo of the card back (with the MRZ)")
    parser.add_argument("--json", action="store_true", help="print the reading as JSON")
    parser.add_argument("--portrait", metavar="FILE", help="write the portrait crop (JPEG)")
    parser.add_argument("--today", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="reference date for expiry (default: today)")
    parser.add_argument("--register-portrait", metavar="FILE", default=None,
                        help="the register's portrait of this number, compared with the card's")


def cli_read_document(args: argparse.Namespace) -> int:
    """`ekyc read-document FRONT [BACK] [--json]`: exit 0 when an ID number was read and no
    finding rejects or asks for review, 1 otherwise, 2 when an image cannot be used."""
    try:
        front = Path(args.front).read_bytes()
        back = Path(args.back).read_bytes() if args.back else None
        register = getattr(args, "register_portrait", None)
        reading = read_document(front, back, today=args.today,
                                register_portrait=Path(register).read_bytes() if register
                                else None)
    except OSError as exc:
        print(f"ekyc read-document: cannot read file: {exc.strerror}", file=sys.stderr)
        return 2
    except ImageError as exc:
        print(json.dumps({"error": exc.code, "error_description": str(exc)}))
        return 2
    if args.portrait and reading.portrait_jpeg:
        Path(args.portrait).write_bytes(reading.portrait_jpeg)
    data = reading.to_dict()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
    else:
        print(f"national_id: {data['national_id']}")
        for f in data["findings"]:
            print(f"{f['severity']:7} {f['code']} {f['detail']}")
    return 0 if reading.national_id and reading.worst() not in ("reject", "review") else 1
