"""Machine readable zones: ICAO Doc 9303 Parts 3-7, and the Vietnamese TD1 layout.

Formats (rows x characters): TD1 3x30 (ID cards, Part 5), TD2 2x36 (Part 6), TD3 2x44
(passports, Part 4), MRV-A 2x44 and MRV-B 2x36 (visas, Part 7); plus the pre-2021 French
national ID card 2x36 (not ICAO, but common in public specimen sets).

Check digits (Part 3 §4.9): weights 7-3-1 repeating, digits count as themselves, A-Z as 10-35
and the filler `<` as 0; the sum modulo 10.

Vietnamese TD1 (CCCD 2021 / căn cước 2024, DOMAIN.md §2): line 1 holds the LAST 9 digits of the
12-digit personal number as document number (positions 6-14) with its check digit (15), the
full 12-digit number in the optional data (16-27), `<<` (28-29) and a check digit over the 12
digits (30). Extra cross-checks apply (document number = last 9 digits of the ID; the ID's
century/sex digit and YY agree with the MRZ birth date and sex); an unknown province code is
only a warning.

`parse_mrz` never raises: garbage gives a result with `valid=False` and error codes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from ekyc.document import idnumber

FILLER = "<"
_WEIGHTS = (7, 3, 1)
_ALPHABET = re.compile(r"[0-9A-Z<]*")
MAX_ECHO = 120  # characters per line echoed back for unrecognised input
VN_NO_EXPIRY = "991231"  # shown on cards without expiry (uncertain per DOMAIN.md)

# Codes that may appear in `MRZResult.errors` (any error makes `valid` False).
ERROR_CODES: dict[str, str] = {
    "empty": "no MRZ text",
    "unrecognized_format": "the line count and lengths match no MRZ format",
    "invalid_characters": "characters outside 0-9, A-Z and '<'",
    "check_digit_document_number": "document number check digit does not match",
    "check_digit_birth_date": "birth date check digit does not match",
    "check_digit_expiry_date": "expiry date check digit does not match",
    "check_digit_personal_number": "personal number (TD3 optional data) check digit does not match",
    "check_digit_composite": "composite check digit does not match",
    "check_digit_national_id": "check digit over the 12-digit Vietnamese ID does not match",
    "vn_national_id_malformed": "the Vietnamese optional data does not hold a 12-digit ID",
    "vn_document_number_mismatch": "document number is not the last 9 digits of the 12-digit ID",
    "vn_birth_year_mismatch": "the ID's YY digits differ from the MRZ birth year",
    "vn_sex_mismatch": "the ID's century/sex digit differs from the MRZ sex",
    "vn_birth_date_implausible": "birth date (century from the ID) is invalid or in the future",
    "vn_expiry_date_invalid": "expiry is neither a calendar date nor 991231 (no expiry)",
}

# Codes that may appear in `MRZResult.warnings` (informative; `valid` is unaffected).
WARNING_CODES: dict[str, str] = {
    "unknown_issuing_state": "issuing state is not an ISO 3166-1 / ICAO code",
    "unknown_nationality": "nationality is not an ISO 3166-1 / ICAO code",
    "birth_date_invalid": "birth date is not a calendar date",
    "expiry_date_invalid": "expiry date is not a calendar date",
    "sex_invalid": "sex is not M, F, X or '<'",
    "document_number_check_includes_filler": (
        "long document number whose check digit only matches when computed over the '<' "
        "separator too (seen on Belgian cards); strict ICAO says it fails"),
    "vn_unknown_province": "the ID's province code is not in the pre-2025 table",
    "vn_no_expiry": "expiry 991231: a card without expiry",
    "extra_lines_ignored": "lines other than the MRZ were ignored",
}

# checks[name] -> error code when False. Check digits first, then Vietnamese cross-checks.
CHECK_DIGIT_ERRORS = {
    "document_number": "check_digit_document_number",
    "birth_date": "check_digit_birth_date",
    "expiry_date": "check_digit_expiry_date",
    "personal_number": "check_digit_personal_number",
    "composite": "check_digit_composite",
    "national_id": "check_digit_national_id",
}
CROSS_CHECK_ERRORS = {
    "vn_national_id_format": "vn_national_id_malformed",
    "vn_document_number_matches_id": "vn_document_number_mismatch",
    "vn_birth_year_matches_id": "vn_birth_year_mismatch",
    "vn_sex_matches_id": "vn_sex_mismatch",
    "vn_birth_date_plausible": "vn_birth_date_implausible",
    "vn_expiry_date_valid": "vn_expiry_date_invalid",
}

# ISO 3166-1 alpha-3 plus the ICAO Doc 9303 Part 3 extra codes (D, GBx, UNx, XXx, EUE, ...).
# `UTO` (Utopia) is ICAO's fictional specimen state and is deliberately absent.
_STATE_TEXT = """
AFG ALA ALB DZA ASM AND AGO AIA ATA ATG ARG ARM ABW AUS AUT AZE BHS BHR BGD BRB BLR BEL BLZ BEN
BMU BTN BOL BES BIH BWA BVT BRA IOT BRN BGR BFA BDI CPV KHM CMR CAN CYM CAF TCD CHL CHN CXR CCK
COL COM COG COD COK CRI CIV HRV CUB CUW CYP CZE DNK DJI DMA DOM ECU EGY SLV GNQ ERI EST SWZ ETH
FLK FRO FJI FIN FRA GUF PYF ATF GAB GMB GEO DEU GHA GIB GRC GRL GRD GLP GUM GTM GGY GIN GNB GUY
HTI HMD VAT HND HKG HUN ISL IND IDN IRN IRQ IRL IMN ISR ITA JAM JPN JEY JOR KAZ KEN KIR PRK KOR
KWT KGZ LAO LVA LBN LSO LBR LBY LIE LTU LUX MAC MDG MWI MYS MDV MLI MLT MHL MTQ MRT MUS MYT MEX
FSM MDA MCO MNG MNE MSR MAR MOZ MMR NAM NRU NPL NLD NCL NZL NIC NER NGA NIU NFK MKD MNP NOR OMN
PAK PLW PSE PAN PNG PRY PER PHL PCN POL PRT PRI QAT REU ROU RUS RWA BLM SHN KNA LCA MAF SPM VCT
WSM SMR STP SAU SEN SRB SYC SLE SGP SXM SVK SVN SLB SOM ZAF SGS SSD ESP LKA SDN SUR SJM SWE CHE
SYR TWN TJK TZA THA TLS TGO TKL TON TTO TUN TUR TKM TCA TUV UGA UKR ARE GBR USA UMI URY UZB VUT
VEN VNM VGB VIR WLF ESH YEM ZMB ZWE
D<< EUE GBD GBN GBO GBP GBS UNA UNK UNO XBA XIM XCC XCE XCO XEC XPO XES XMP XOM XDC XXA XXB
XXC XXX RKS ANT NTZ
"""
STATE_CODES = frozenset(_STATE_TEXT.split())


def _value(c: str) -> int:
    if c == FILLER:
        return 0
    if "0" <= c <= "9":
        return ord(c) - 48
    if "A" <= c <= "Z":
        return ord(c) - 55
    raise ValueError(f"character {c!r} is not allowed in an MRZ")


def check_digit(s: str) -> str:
    """ICAO 9303 check digit of `s` (7-3-1 weights; '<' = 0, A-Z = 10..35).

    Raises ValueError for characters outside 0-9, A-Z and '<'.
    """
    return str(sum(_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(s)) % 10)


def _check(data: str, digit: str) -> bool:
    """True when `digit` is the check digit of `data`; False for any invalid character."""
    try:
        return check_digit(data) == digit
    except ValueError:
        return False


def transliterate(name: str) -> str:
    """Uppercase ASCII form of a (Vietnamese) name: diacritics removed, `Đ`/`đ` -> `D`,
    anything that is not a letter or digit becomes a space, spaces collapsed."""
    text = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    text = re.sub(r"[^A-Z0-9]+", " ", text)
    return text.strip()


def _name_field(surname: str, given: str, width: int) -> str:
    primary = transliterate(surname).replace(" ", FILLER)
    secondary = transliterate(given).replace(" ", FILLER)
    text = primary + (FILLER * 2 + secondary if secondary else "")
    return text[:width].ljust(width, FILLER)


def _yymmdd(d: date) -> str:
    return d.strftime("%y%m%d")


def compose_vn_td1(*, national_id: str, birth: date, sex: str, expiry: date | None,
                   surname: str, given: str) -> list[str]:
    """The 3x30 MRZ of a Vietnamese card, every check digit computed.

    Document number = the last 9 digits of `national_id`; names are transliterated (no
    diacritics) and truncated to 30 characters. `expiry=None` (card without expiry) is written
    `991231`, which DOMAIN.md reports as uncertain. Only the format is validated (12 digits,
    sex M/F): inconsistent numbers can be composed on purpose, e.g. for forged test cards.
    """
    if not idnumber.is_national_id(national_id):
        raise ValueError("national_id must be 12 digits")
    if sex not in ("M", "F"):
        raise ValueError("sex must be 'M' or 'F'")
    doc = national_id[3:]
    line1 = f"IDVNM{doc}{check_digit(doc)}{national_id}<<{check_digit(national_id)}"
    birth_s = _yymmdd(birth)
    expiry_s = VN_NO_EXPIRY if expiry is None else _yymmdd(expiry)
    head = f"{birth_s}{check_digit(birth_s)}{sex}{expiry_s}{check_digit(expiry_s)}VNM"
    body = head + FILLER * 11
    composite = check_digit(line1[5:30] + body[0:7] + body[8:15] + body[18:29])
    return [line1, body + composite, _name_field(surname, given, 30)]


@dataclass
class MRZResult:
    """What `parse_mrz` found. `valid` = a format was recognised, every check digit holds
    and, for Vietnamese cards, every cross-check holds (no `errors`)."""

    format: str | None
    lines: list[str]
    fields: dict = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the MRZ was recognised and nothing failed."""
        return self.format is not None and not self.errors

    @property
    def check_digits_ok(self) -> bool:
        """True when every check digit present holds (ignores Vietnamese cross-checks)."""
        return all(ok for name, ok in self.checks.items() if name in CHECK_DIGIT_ERRORS)

    @property
    def is_vietnamese(self) -> bool:
        """True for a TD1 issued by VNM (the Vietnamese layout and cross-checks applied)."""
        return self.fields.get("national_id") is not None or any(
            name.startswith("vn_") for name in self.checks)

    def to_dict(self) -> dict:
        """JSON-safe form: valid, format, fields, checks, errors, warnings, lines."""
        return {"valid": self.valid, "format": self.format, "fields": dict(self.fields),
                "checks": dict(self.checks), "errors": list(self.errors),
                "warnings": list(self.warnings), "lines": list(self.lines)}


def _normalize(lines: list[str] | str) -> list[str]:
    if isinstance(lines, (bytes, bytearray)):
        lines = lines.decode("utf-8", "replace")
    if isinstance(lines, str):
        lines = lines.splitlines()
    out = []
    for line in lines:
        if not isinstance(line, str):
            line = str(line)
        stripped = "".join(line.split())
        if stripped:
            out.append(stripped)
    return out


def _detect(lines: list[str]) -> str | None:
    shape = (len(lines), *{len(line) for line in lines})
    if shape == (3, 30):
        return "TD1"
    if shape == (2, 44):
        return "MRV-A" if lines[0].startswith("V") else "TD3"
    if shape == (2, 36):
        if lines[0].startswith("V"):
            return "MRV-B"
        # The French card has digits where a TD2 has the nationality (line 2, 11-13).
        if lines[0].startswith("IDFRA") and not re.fullmatch(r"[A-Z<]{3}", lines[1][10:13]):
            return "FRA-ID"
        return "TD2"
    return None


def _select(lines: list[str]) -> tuple[list[str], str | None, bool]:
    """The MRZ lines and format; when extra lines surround them, the first window that fits."""
    fmt = _detect(lines)
    if fmt is not None:
        return lines, fmt, False
    for rows in (3, 2):
        for start in range(len(lines) - rows + 1):
            window = lines[start:start + rows]
            fmt = _detect(window)
            if fmt is not None:
                return window, fmt, True
    return lines, None, False


def _date(raw: str, *, birth: bool, today: date, century: int | None = None) -> date | None:
    if not re.fullmatch(r"[0-9]{6}", raw):
        return None
    yy, mm, dd = int(raw[:2]), int(raw[2:4]), int(raw[4:6])
    if century is not None:
        year = century + yy
    elif birth:  # a birth date is not in the future
        year = 2000 + yy if 2000 + yy <= today.year else 1900 + yy
    else:  # expiry: within 50 years ahead
        year = 2000 + yy if 2000 + yy <= today.year + 50 else 1900 + yy
    try:
        return date(year, mm, dd)
    except ValueError:
        return None


def _names(text: str) -> tuple[str, str]:
    primary, _, secondary = text.partition(FILLER * 2)

    def clean(s: str) -> str:
        return " ".join(s.replace(FILLER, " ").split())
    return clean(primary), clean(secondary)


def _sex(c: str) -> str | None:
    return {"M": "M", "F": "F", "X": "X", FILLER: "X"}.get(c)


def _document_number(number: str, digit: str, optional: str,
                     result: MRZResult) -> tuple[str, str]:
    """Check the document number; returns (number, remaining optional data).

    Long numbers (Part 5 §4.2.2 note j, Part 6 note): position after the 9 principal
    characters holds '<', and the optional data starts with the remaining characters followed
    by the check digit over the whole number.
    """
    if digit == FILLER and FILLER not in number:
        end = optional.find(FILLER)
        end = len(optional) if end == -1 else end
        if end >= 1:
            extra, digit = optional[:end - 1], optional[end - 1]
            ok = _check(number + extra, digit)
            result.checks["document_number"] = ok
            if not ok and _check(number + FILLER + extra, digit):
                result.warnings.append("document_number_check_includes_filler")
            return number + extra, optional[end:]
    result.checks["document_number"] = _check(number, digit)
    return number.rstrip(FILLER), optional


def _dates_and_sex(result: MRZResult, birth: str, birth_cd: str, sex: str, expiry: str | None,
                   expiry_cd: str | None, today: date, century: int | None = None) -> None:
    f = result.fields
    result.checks["birth_date"] = _check(birth, birth_cd)
    f["birth_date_raw"] = birth
    born = _date(birth, birth=True, today=today, century=century)
    f["birth_date"] = born.isoformat() if born else None
    if born is None:
        result.warnings.append("birth_date_invalid")
    f["sex"] = _sex(sex)
    if f["sex"] is None:
        result.warnings.append("sex_invalid")
    if expiry is None:
        f["expiry_date_raw"], f["expiry_date"] = None, None
        return
    result.checks["expiry_date"] = _check(expiry, expiry_cd)
    f["expiry_date_raw"] = expiry
    expires = _date(expiry, birth=False, today=today)
    f["expiry_date"] = expires.isoformat() if expires else None
    if expires is None:
        result.warnings.append("expiry_date_invalid")


def _states(result: MRZResult, issuing: str, nationality: str | None) -> None:
    f = result.fields
    f["issuing_state"] = issuing.rstrip(FILLER) or issuing
    f["nationality"] = None if nationality is None else (nationality.rstrip(FILLER) or nationality)
    if issuing not in STATE_CODES:
        result.warnings.append("unknown_issuing_state")
    if nationality is not None and nationality not in STATE_CODES:
        result.warnings.append("unknown_nationality")


def _td1(r: MRZResult, today: date) -> None:
    l1, l2, l3 = r.lines
    f = r.fields
    f["document_code"] = l1[0:2].rstrip(FILLER) or l1[0:2]
    _states(r, l1[2:5], l2[15:18])
    vietnamese = l1[2:5] == "VNM"
    nid = l1[15:27] if vietnamese else None
    number, optional = _document_number(l1[5:14], l1[14], l1[15:30], r)
    f["document_number"] = number
    f["optional_data"] = optional.rstrip(FILLER)
    f["optional_data_2"] = l2[18:29].rstrip(FILLER)
    century = None
    parsed = None
    if vietnamese:
        f["national_id"] = nid
        r.checks["vn_national_id_format"] = idnumber.is_national_id(nid)
        r.checks["national_id"] = _check(nid, l1[29])
        if r.checks["vn_national_id_format"]:
            parsed = idnumber.parse_national_id(nid)
            century = parsed.century
    _dates_and_sex(r, l2[0:6], l2[6], l2[7], l2[8:14], l2[14], today, century)
    r.checks["composite"] = _check(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29])
    f["surname"], f["given_names"] = _names(l3)
    if vietnamese:
        _vietnamese(r, nid, parsed, today)


def _vietnamese(r: MRZResult, nid: str, parsed: idnumber.NationalId | None, today: date) -> None:
    """DOMAIN.md §2 cross-checks between the 12-digit ID, the document number, DOB and sex."""
    f = r.fields
    r.checks["vn_document_number_matches_id"] = f["document_number"] == nid[3:]
    # ICAO lets a birth date hide unknown parts, never an expiry: a card's is a real date.
    r.checks["vn_expiry_date_valid"] = f["expiry_date"] is not None
    if f["expiry_date_raw"] == VN_NO_EXPIRY:
        f["expiry_date"] = None
        r.warnings.append("vn_no_expiry")
    if parsed is None:
        for name in ("vn_birth_year_matches_id", "vn_sex_matches_id", "vn_birth_date_plausible"):
            r.checks[name] = False
        return
    f["province_code"] = parsed.province_code
    f["province_name"] = parsed.province_name
    if not parsed.known_province:
        r.warnings.append("vn_unknown_province")
    raw = f["birth_date_raw"]
    r.checks["vn_birth_year_matches_id"] = raw[:2] == nid[4:6]
    r.checks["vn_sex_matches_id"] = f["sex"] == parsed.sex
    born = date.fromisoformat(f["birth_date"]) if f["birth_date"] else None
    r.checks["vn_birth_date_plausible"] = born is not None and born <= today


def _two_line(r: MRZResult, today: date, *, composite: bool, personal: bool) -> None:
    """TD2, TD3, MRV-A and MRV-B share line 1 and line 2 positions 1-28; they differ after."""
    l1, l2 = r.lines
    f = r.fields
    f["document_code"] = l1[0:2].rstrip(FILLER) or l1[0:2]
    _states(r, l1[2:5], l2[10:13])
    f["surname"], f["given_names"] = _names(l1[5:])
    if personal:  # TD3: personal number 29-42 with its check digit at 43; no long numbers
        number, _ = _document_number(l2[0:9], l2[9], "", r)
        optional, digit = l2[28:42], l2[42]
        # Part 4 §4.2.2: an unused personal number may carry '<' instead of '0'.
        r.checks["personal_number"] = _check(optional, digit) or (
            set(optional) == {FILLER} and digit == FILLER)
    else:  # TD2 and visas: a long number overflows into the optional data
        number, optional = _document_number(l2[0:9], l2[9], l2[28:-1] if composite else l2[28:],
                                            r)
    f["document_number"] = number
    f["optional_data"] = optional.rstrip(FILLER)
    _dates_and_sex(r, l2[13:19], l2[19], l2[20], l2[21:27], l2[27], today)
    if composite:
        r.checks["composite"] = _check(l2[0:10] + l2[13:20] + l2[21:-1], l2[-1])


def _french_id(r: MRZResult, today: date) -> None:
    """Pre-2021 French card: surname and office code on line 1; number, given names, birth
    date and sex on line 2; no expiry; composite over line 1 and line 2 positions 1-35."""
    l1, l2 = r.lines
    f = r.fields
    f["document_code"] = l1[0:2]
    _states(r, l1[2:5], None)
    f["nationality"] = "FRA"
    f["surname"] = " ".join(l1[5:30].replace(FILLER, " ").split())
    f["given_names"] = " ".join(l2[13:27].replace(FILLER, " ").split())
    f["document_number"] = l2[0:12].rstrip(FILLER)
    f["optional_data"] = l1[30:36].rstrip(FILLER)
    r.checks["document_number"] = _check(l2[0:12], l2[12])
    _dates_and_sex(r, l2[27:33], l2[33], l2[34], None, None, today)
    r.checks["composite"] = _check(l1 + l2[0:35], l2[35])


_PARSERS = {
    "TD1": _td1,
    "TD2": lambda r, t: _two_line(r, t, composite=True, personal=False),
    "TD3": lambda r, t: _two_line(r, t, composite=True, personal=True),
    "MRV-A": lambda r, t: _two_line(r, t, composite=False, personal=False),
    "MRV-B": lambda r, t: _two_line(r, t, composite=False, personal=False),
    "FRA-ID": _french_id,
}

_FIELD_KEYS = ("document_code", "issuing_state", "document_number", "national_id", "birth_date",
               "sex", "expiry_date", "nationality", "surname", "given_names", "optional_data")


def parse_mrz(lines: list[str] | str, *, today: date | None = None) -> MRZResult:
    """Parse and check an MRZ given as lines or one string with newlines.

    Whitespace inside and around lines is removed and blank lines dropped; when more lines
    are given, the first run of lines that fits a format is used (warning
    `extra_lines_ignored`). `today` (default: the current date) resolves two-digit years and
    the plausibility of a Vietnamese birth date. Never raises: unrecognised input gives
    `format=None` and an error code.
    """
    today = today or date.today()
    try:
        normalized = _normalize(lines)
    except Exception:  # noqa: BLE001 - tolerant by contract: anything unusable is "empty"
        normalized = []
    if not normalized:
        return MRZResult(format=None, lines=[], fields=dict.fromkeys(_FIELD_KEYS),
                         errors=["empty"])
    selected, fmt, extra = _select(normalized)
    result = MRZResult(format=fmt, lines=selected, fields=dict.fromkeys(_FIELD_KEYS))
    if extra:
        result.warnings.append("extra_lines_ignored")
    if fmt is None:  # echo only a bounded excerpt of unrecognised input
        result.lines = [line[:MAX_ECHO] for line in selected[:6]]
        result.errors.append("unrecognized_format")
        return result
    if not all(_ALPHABET.fullmatch(line) for line in selected):
        result.errors.append("invalid_characters")
    _PARSERS[fmt](result, today)
    for name, ok in result.checks.items():
        if not ok:
            code = CHECK_DIGIT_ERRORS.get(name) or CROSS_CHECK_ERRORS[name]
            if code not in result.errors:
                result.errors.append(code)
    return result
