"""The QR payload of the Vietnamese chip ID card (DOMAIN.md §2).

2021 CCCD (front side): 7 fields joined by `|`:
`ID12|oldCMND9|Full name|DOB DDMMYYYY|Nam or Nữ|Permanent address|Issue date DDMMYYYY`,
the old number may be empty. The 2024 căn cước card (back side) carries the same data plus
more fields (cancelled number, parents' names for young children); their order is uncertain,
so fields after the seventh are kept verbatim in `extra` and empty fields are accepted.

The QR is unsigned and has no expiry: a convenience encoding, never proof on its own.
Garbage raises `QRPayloadError` with a stable `code` (see `ERROR_CODES`); nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from ekyc.document import idnumber

MAX_LENGTH = 4096  # a version-40 QR holds at most ~2,900 bytes of 8-bit data
MIN_FIELDS = 7

ERROR_CODES: dict[str, str] = {
    "not_text": "the payload is neither text nor UTF-8 bytes",
    "empty": "the payload is empty",
    "too_long": "the payload is longer than any ID card QR",
    "too_few_fields": "fewer than 7 '|'-separated fields",
    "invalid_national_id": "field 1 is not a 12-digit personal identification number",
    "invalid_old_id": "field 2 is neither empty nor a 9- or 12-digit number",
    "missing_name": "field 3 (full name) is empty or holds no letter",
    "invalid_birth_date": "field 4 is not a DDMMYYYY calendar date",
    "invalid_sex": "field 5 is neither 'Nam' nor 'Nữ'",
    "invalid_issue_date": "field 7 is neither empty nor a DDMMYYYY calendar date",
}


class QRPayloadError(ValueError):
    """The text is not a card QR payload; `code` is one of `ERROR_CODES`."""

    def __init__(self, code: str, message: str | None = None):
        super().__init__(message or ERROR_CODES.get(code, code))
        self.code = code


@dataclass(frozen=True)
class QRPayload:
    """The decoded payload. Text fields are NFC-normalised with whitespace collapsed."""

    national_id: str
    old_id: str  # '' when absent
    full_name: str
    birth: date
    sex: str  # 'M' or 'F'
    address: str
    issue_date: date | None
    extra: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-safe form (dates ISO 8601)."""
        return {"national_id": self.national_id, "old_id": self.old_id,
                "full_name": self.full_name, "birth": self.birth.isoformat(), "sex": self.sex,
                "address": self.address,
                "issue_date": self.issue_date.isoformat() if self.issue_date else None,
                "extra": list(self.extra)}


def _clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _unmojibake(text: str) -> str:
    """Undo UTF-8 read as Latin-1 / cp1252 (some scanners do that); otherwise unchanged.

    Repaired only when the text is entirely Latin-1/cp1252, is valid UTF-8 once re-encoded,
    and the result holds characters outside Latin-1 (Vietnamese ư, ơ, ễ, đ, ...): genuine
    Vietnamese text fails one of these, so it is never altered.
    """
    for codec in ("latin-1", "cp1252"):
        try:
            fixed = text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if any(ord(c) > 0xFF for c in fixed):
            return fixed
    return text


def parse_ddmmyyyy(text: str) -> date | None:
    """A DDMMYYYY date (separators '/', '-', '.' and spaces tolerated); None if not a date."""
    digits = re.sub(r"[\s/.\-]", "", text)
    if not re.fullmatch(r"[0-9]{8}", digits):
        return None
    try:
        return date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
    except ValueError:
        return None


def parse_sex(text: str) -> str | None:
    """'M' for "Nam", 'F' for "Nữ" (NFC or NFD, any case; "Nu" without diacritics too)."""
    key = unicodedata.normalize("NFC", text).strip().casefold()
    if key == "nam":
        return "M"
    if key in ("nữ", "nu"):
        return "F"
    return None


def parse_cccd_qr(text: str | bytes) -> QRPayload:
    """Decode a card QR payload (str, or bytes in UTF-8); raises `QRPayloadError` on garbage."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise QRPayloadError("not_text") from None
    if not isinstance(text, str):
        raise QRPayloadError("not_text")
    if len(text) > MAX_LENGTH:
        raise QRPayloadError("too_long")
    text = _unmojibake(text.strip().lstrip("\ufeff").strip())
    if not text:
        raise QRPayloadError("empty")
    parts = [_clean(p) for p in text.split("|")]
    if len(parts) < MIN_FIELDS:
        raise QRPayloadError("too_few_fields")
    national_id, old_id, name, dob, sex, address, issued = parts[:MIN_FIELDS]
    if not idnumber.is_national_id(national_id):
        raise QRPayloadError("invalid_national_id")
    if old_id and not (old_id.isascii() and old_id.isdigit() and len(old_id) in (9, 12)):
        raise QRPayloadError("invalid_old_id")
    if not any(c.isalpha() for c in name):
        raise QRPayloadError("missing_name")
    birth = parse_ddmmyyyy(dob)
    if birth is None:
        raise QRPayloadError("invalid_birth_date")
    sex_code = parse_sex(sex)
    if sex_code is None:
        raise QRPayloadError("invalid_sex")
    issue_date = parse_ddmmyyyy(issued) if issued else None
    if issued and issue_date is None:
        raise QRPayloadError("invalid_issue_date")
    return QRPayload(national_id=national_id, old_id=old_id, full_name=name, birth=birth,
                     sex=sex_code, address=address, issue_date=issue_date,
                     extra=parts[MIN_FIELDS:])
