"""Card checks: number structure, QR vs MRZ vs printed fields, expiry (DOMAIN.md §1-2).

`cross_check` returns findings, each with a stable `code` (see `FINDING_CODES`; the
backend maps codes to translated messages), a severity and a detail that names sources and
fields but never their values (findings are stored and may be logged: no personal data).

Severities:
- `reject`: a structural contradiction between machine-readable data, which a genuine card
  never shows (number vs date of birth/sex, QR number vs MRZ number, a failed check digit,
  an expired card);
- `review`: disagreement involving OCR of printed text, or an MRZ name line (it carries no
  check digit), which noise alone can explain; a human decides;
- `warn`: worth recording, not a reason to stop (unknown province code, a missing source).

`printed` is the dict of OCR'd front fields; every key is optional and values may be None:
- `national_id`: the 12-digit number as read (spaces ignored);
- `full_name`: name with diacritics;
- `date_of_birth`, `expiry`: a `date`, or text `DD/MM/YYYY` (also `-`, `.`, none) or ISO
  `YYYY-MM-DD`; `expiry` may also say "Không thời hạn" (no expiry);
- `sex`: "Nam"/"Nữ" or 'M'/'F';
- `nationality`: "Việt Nam" (or `VNM`);
- `place_of_residence`: compared with the QR address;
- `place_of_origin`: accepted but not compared (no machine-readable counterpart).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from ekyc.document import idnumber
from ekyc.document.mrz import CHECK_DIGIT_ERRORS, MRZResult, transliterate
from ekyc.document.qr_payload import QRPayload, parse_ddmmyyyy, parse_sex

REJECT, REVIEW, WARN = "reject", "review", "warn"
SEVERITY_ORDER = {WARN: 0, REVIEW: 1, REJECT: 2}

# code -> (severity, English description). Stable: the backend translates by code.
FINDINGS: dict[str, tuple[str, str]] = {
    # structure of the 12-digit number vs the data printed next to it
    "id_birth_year_mismatch": (REJECT, "the ID number's year digits disagree with the birth date"),
    "id_century_mismatch": (REJECT, "the ID number's century digit disagrees with the birth date"),
    "id_sex_mismatch": (REJECT, "the ID number's century/sex digit disagrees with the sex"),
    "id_unknown_province": (WARN, "the ID number's province code is not in the known table"),
    # MRZ
    "mrz_check_digit": (REJECT, "an MRZ check digit does not match"),
    "mrz_document_number_mismatch": (REJECT, ("the MRZ document number is not the last 9 digits "
                                             "of the ID number")),
    "mrz_national_id_malformed": (REJECT, "the MRZ does not hold a 12-digit ID number"),
    "mrz_expiry_date_invalid": (REJECT, "the MRZ expiry is neither a date nor 'no expiry'"),
    "mrz_unreadable": (REVIEW, "the MRZ could not be read as a machine readable zone"),
    "mrz_not_vietnamese": (REVIEW, "the MRZ is not the Vietnamese ID card layout"),
    "card_expired": (REJECT, "the card has expired (MRZ expiry date)"),
    # QR
    "qr_issue_date_invalid": (REJECT, "the QR issue date is before birth or in the future"),
    # QR vs MRZ
    "qr_mrz_id_mismatch": (REJECT, "the ID numbers in the QR code and the MRZ differ"),
    "qr_mrz_birth_date_mismatch": (REJECT, "the dates of birth in the QR code and the MRZ differ"),
    "qr_mrz_sex_mismatch": (REJECT, "the sex in the QR code and the MRZ differ"),
    "qr_mrz_name_mismatch": (REVIEW, ("the names in the QR code and the MRZ differ (compared "
                                     "without diacritics; the MRZ name line has no check digit)")),
    # printed (OCR) vs machine-readable
    "printed_id_mismatch": (REVIEW, "the printed ID number differs from the QR code or MRZ"),
    "printed_id_structure_mismatch": (REVIEW, ("the printed ID number disagrees with the printed "
                                              "date of birth or sex")),
    "printed_name_mismatch": (REVIEW, "the printed name differs from the QR code or MRZ"),
    "printed_birth_date_mismatch": (REVIEW, ("the printed date of birth differs from the QR code "
                                            "or MRZ")),
    "printed_sex_mismatch": (REVIEW, "the printed sex differs from the QR code or MRZ"),
    "printed_nationality_mismatch": (REVIEW, "the printed nationality is not Vietnamese"),
    "printed_residence_mismatch": (REVIEW, ("the printed place of residence differs from the QR "
                                           "address")),
    "printed_expiry_mismatch": (REVIEW, "the printed expiry date differs from the MRZ"),
    "printed_card_expired": (REVIEW, "the printed expiry date is past (no MRZ to confirm it)"),
    # sources
    "no_machine_readable_data": (REVIEW, "neither a QR code nor an MRZ was read"),
    "qr_missing": (WARN, "no QR code was read; the MRZ alone was checked"),
    "mrz_missing": (WARN, "no MRZ was read; the QR code alone was checked"),
}

# code -> English description (what the backend maps to translated messages).
FINDING_CODES: dict[str, str] = {code: text for code, (_, text) in FINDINGS.items()}

_MRZ_STRUCTURE = {  # MRZ Vietnamese cross-check errors -> finding codes
    "vn_birth_year_mismatch": "id_birth_year_mismatch",
    "vn_sex_mismatch": "id_sex_mismatch",
    "vn_birth_date_implausible": "id_century_mismatch",
    "vn_document_number_mismatch": "mrz_document_number_mismatch",
    "vn_national_id_malformed": "mrz_national_id_malformed",
    "vn_expiry_date_invalid": "mrz_expiry_date_invalid",
}
_NO_EXPIRY = ("khong thoi han", "khong", "vo thoi han")


@dataclass(frozen=True)
class Finding:
    """One check result: `code` (key of `FINDING_CODES`), `severity`, `detail` (no PII)."""

    code: str
    severity: str
    detail: str = ""

    def to_dict(self) -> dict:
        """JSON-safe form."""
        return {"code": self.code, "severity": self.severity, "detail": self.detail}


def _finding(code: str, detail: str = "") -> Finding:
    return Finding(code, FINDINGS[code][0], detail)


def worst_severity(findings: list[Finding]) -> str | None:
    """'reject', 'review', 'warn', or None for no findings."""
    if not findings:
        return None
    return max((f.severity for f in findings), key=SEVERITY_ORDER.__getitem__)


def _fold(text: str) -> str:
    """NFC, casefold, whitespace collapsed: for names (diacritics matter)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _loose(text: str) -> str:
    """Diacritics, punctuation and spacing removed: for addresses read by OCR."""
    return transliterate(text).replace(" ", "")


def _as_date(value: object) -> date | None:
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    return parse_ddmmyyyy(text)


def _sex(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    if value.strip().upper() in ("M", "F"):
        return value.strip().upper()
    return parse_sex(value)


def _structure(number: str, birth: date | None, sex: str | None, source: str,
               findings: list[Finding], *, printed: bool = False) -> None:
    try:
        nid = idnumber.parse_national_id(number)
    except idnumber.InvalidNationalId:
        return
    for code in idnumber.check_against(nid, birth, sex):
        if printed:
            findings.append(_finding("printed_id_structure_mismatch", f"{source}: {code}"))
        else:
            findings.append(_finding(code, source))


def _mrz_findings(mrz: MRZResult, today: date, findings: list[Finding]) -> bool:
    """Findings of the MRZ alone; True when it is a usable Vietnamese MRZ."""
    if mrz.format is None or "invalid_characters" in mrz.errors:
        findings.append(_finding("mrz_unreadable", ", ".join(mrz.errors)))
        return False
    failed = [name for name, ok in mrz.checks.items() if name in CHECK_DIGIT_ERRORS and not ok]
    if failed:
        findings.append(_finding("mrz_check_digit", ", ".join(failed)))
    if mrz.fields.get("national_id") is None:
        findings.append(_finding("mrz_not_vietnamese", f"format {mrz.format}"))
        return False
    for error in mrz.errors:
        if error in _MRZ_STRUCTURE:
            findings.append(_finding(_MRZ_STRUCTURE[error], "MRZ"))
    expiry = mrz.fields.get("expiry_date")
    if expiry and date.fromisoformat(expiry) < today and "expiry_date" not in failed:
        findings.append(_finding("card_expired", "MRZ expiry date"))
    return True


def _mrz_name_matches(qr_name: str, mrz: MRZResult) -> bool:
    mrz_name = " ".join(filter(None, (mrz.fields.get("surname"), mrz.fields.get("given_names"))))
    expected = transliterate(qr_name)
    if mrz_name == expected:
        return True
    # A full name line may have been truncated (ICAO 9303-3 §4.6): compare the prefix.
    truncated = mrz.format == "TD1" and len(mrz.lines) == 3 and not mrz.lines[2].endswith("<")
    squeeze = mrz_name.replace(" ", "")
    return truncated and bool(squeeze) and expected.replace(" ", "").startswith(squeeze)


def _qr_vs_mrz(qr: QRPayload, mrz: MRZResult, findings: list[Finding]) -> None:
    f = mrz.fields
    if f.get("national_id") != qr.national_id:
        findings.append(_finding("qr_mrz_id_mismatch", "QR vs MRZ"))
    if f.get("birth_date") != qr.birth.isoformat():
        findings.append(_finding("qr_mrz_birth_date_mismatch", "QR vs MRZ"))
    if f.get("sex") != qr.sex:
        findings.append(_finding("qr_mrz_sex_mismatch", "QR vs MRZ"))
    if not _mrz_name_matches(qr.full_name, mrz):
        findings.append(_finding("qr_mrz_name_mismatch", "QR vs MRZ"))


def _printed_findings(printed: dict, qr: QRPayload | None, mrz: MRZResult | None,
                      today: date, findings: list[Finding]) -> None:
    mrz_f = mrz.fields if mrz is not None and mrz.fields.get("national_id") else {}
    number = printed.get("national_id")
    number = "".join(number.split()) if isinstance(number, str) else None
    if number:
        refs = {"QR": qr.national_id if qr else None, "MRZ": mrz_f.get("national_id")}
        for source, ref in refs.items():
            if ref and ref != number:
                findings.append(_finding("printed_id_mismatch", f"printed vs {source}"))
    birth = _as_date(printed.get("date_of_birth"))
    sex = _sex(printed.get("sex"))
    if number:
        _structure(number, birth, sex, "printed", findings, printed=True)
    name = printed.get("full_name")
    if isinstance(name, str) and name.strip():
        if qr is not None and _fold(name) != _fold(qr.full_name):
            findings.append(_finding("printed_name_mismatch", "printed vs QR"))
        elif qr is None and mrz_f and not _mrz_name_matches(name, mrz):
            findings.append(_finding("printed_name_mismatch", "printed vs MRZ (no diacritics)"))
    if birth is not None:
        for source, ref in (("QR", qr.birth.isoformat() if qr else None),
                            ("MRZ", mrz_f.get("birth_date"))):
            if ref and ref != birth.isoformat():
                findings.append(_finding("printed_birth_date_mismatch", f"printed vs {source}"))
    if sex is not None:
        for source, ref in (("QR", qr.sex if qr else None), ("MRZ", mrz_f.get("sex"))):
            if ref and ref != sex:
                findings.append(_finding("printed_sex_mismatch", f"printed vs {source}"))
    nationality = printed.get("nationality")
    if (isinstance(nationality, str) and nationality.strip()
            and _loose(nationality) not in ("VIETNAM", "VNM")):
        findings.append(_finding("printed_nationality_mismatch", "printed"))
    residence = printed.get("place_of_residence")
    if (isinstance(residence, str) and residence.strip() and qr is not None and qr.address
            and _loose(residence) != _loose(qr.address)):
        findings.append(_finding("printed_residence_mismatch", "printed vs QR"))
    _printed_expiry(printed.get("expiry"), mrz_f, today, findings)


def _printed_expiry(value: object, mrz_f: dict, today: date, findings: list[Finding]) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return
    no_expiry = isinstance(value, str) and transliterate(value).lower() in _NO_EXPIRY
    expiry = None if no_expiry else _as_date(value)
    if expiry is None and not no_expiry:
        return  # unreadable OCR: nothing to compare
    if mrz_f:
        ref = mrz_f.get("expiry_date")
        if (None if no_expiry else expiry.isoformat()) != ref:
            findings.append(_finding("printed_expiry_mismatch", "printed vs MRZ"))
    elif expiry is not None and expiry < today:
        findings.append(_finding("printed_card_expired", "printed"))


def cross_check(qr: QRPayload | None, mrz: MRZResult | None, printed: dict | None,
                today: date) -> list[Finding]:
    """Every finding about one card, in a stable order (structure, MRZ, QR vs MRZ, printed).

    An empty list means every available check passed. `today` decides expiry.
    """
    findings: list[Finding] = []
    if qr is None and mrz is None:
        findings.append(_finding("no_machine_readable_data"))
    elif qr is None:
        findings.append(_finding("qr_missing"))
    elif mrz is None:
        findings.append(_finding("mrz_missing"))
    number = None
    if qr is not None:
        number = qr.national_id
        _structure(qr.national_id, qr.birth, qr.sex, "QR", findings)
        if qr.issue_date is not None and not qr.birth <= qr.issue_date <= today:
            findings.append(_finding("qr_issue_date_invalid", "QR"))
    usable_mrz = mrz is not None and _mrz_findings(mrz, today, findings)
    if usable_mrz:
        number = number or mrz.fields["national_id"]
        if qr is not None:
            _qr_vs_mrz(qr, mrz, findings)
    if printed:
        _printed_findings(printed, qr, mrz if usable_mrz else None, today, findings)
        if number is None and isinstance(printed.get("national_id"), str):
            number = "".join(printed["national_id"].split())
    if idnumber.is_national_id(number) and not idnumber.parse_national_id(number).known_province:
        findings.append(_finding("id_unknown_province"))
    return findings
