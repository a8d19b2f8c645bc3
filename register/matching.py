"""Per-field comparison of presented identity data with a register record.

Text fields (name, residence) are compared after Unicode NFC, case folding and collapsing
whitespace (also around commas), so "NGUYỄN  thị minh anh" matches "Nguyễn Thị Minh Anh" but
"Nguyen Thi Minh Anh" does not: diacritics are part of a Vietnamese name. Dates are compared as
dates, sex as 'M'/'F'. The answer is only "match" or "mismatch": never the stored value.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from register.errors import BadRequest
from register.models import CitizenRecord

FIELDS = ("full_name", "date_of_birth", "sex", "residence", "card_issue_date")
MAX_TEXT = 300
_SPACES = re.compile(r"\s+")
_COMMA = re.compile(r"\s*,\s*")


def normalise_text(value: str) -> str:
    text = unicodedata.normalize("NFC", value).casefold()
    text = _SPACES.sub(" ", text).strip()
    return _COMMA.sub(", ", text)


def _text(name: str, value) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise BadRequest(f"fields.{name} must be a string of at most {MAX_TEXT} characters")
    return normalise_text(value)


def _date(name: str, value) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise BadRequest(f"fields.{name} must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"fields.{name} must be a date YYYY-MM-DD") from exc


def _sex(name: str, value) -> str:
    if value not in ("M", "F"):
        raise BadRequest(f"fields.{name} must be 'M' or 'F'")
    return value


# field -> (parse the presented value, read the comparable stored value)
_COMPARATORS = {
    "full_name": (_text, lambda r: normalise_text(r.full_name)),
    "date_of_birth": (_date, lambda r: r.date_of_birth),
    "sex": (_sex, lambda r: r.sex),
    "residence": (_text, lambda r: normalise_text(r.residence)),
    "card_issue_date": (_date, lambda r: r.card_issue_date),
}


def parse_fields(fields) -> dict:
    """Validate the presented fields (any subset of FIELDS); returns {name: comparable value}."""
    if not isinstance(fields, dict):
        raise BadRequest("fields must be an object")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)[:200]}")
    return {name: _COMPARATORS[name][0](name, value) for name, value in fields.items()}


def compare(record: CitizenRecord, presented: dict) -> dict[str, str]:
    """{field: "match" | "mismatch"} for exactly the presented fields."""
    return {name: "match" if _COMPARATORS[name][1](record) == value else "mismatch"
            for name, value in presented.items()}
