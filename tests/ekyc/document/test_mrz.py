"""MRZ check digits, the Vietnamese TD1 layout, its cross-checks and tolerant parsing."""

from __future__ import annotations

import json
from datetime import date

import pytest

from ekyc.document.mrz import (
    ERROR_CODES,
    WARNING_CODES,
    check_digit,
    compose_vn_td1,
    parse_mrz,
    transliterate,
)
from tests.ekyc.document import recompute_td1_check_digits

TODAY = date(2025, 6, 1)

# DOMAIN.md's example line 1, completed: 051091005513 = Quảng Ngãi, male, born 1991.
VN_LINES = [
    "IDVNM0910055134051091005513<<0",
    "9110052M3110050VNM<<<<<<<<<<<6",
    "NGUYEN<<VAN<DUC<<<<<<<<<<<<<<<",
]


def _vn(**overrides) -> list[str]:
    citizen = {"national_id": "051091005513", "birth": date(1991, 10, 5), "sex": "M",
               "expiry": date(2031, 10, 5), "surname": "Nguyễn", "given": "Văn Đức"}
    citizen.update(overrides)
    return compose_vn_td1(**citizen)


# -- check digits -----------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "digit"), [
    ("D23145890", "7"),  # ICAO 9303-5 Utopia specimen
    ("740812", "2"),
    ("120415", "9"),
    ("L898902C3", "6"),  # ICAO 9303-4 specimen passport
    ("520727", "3"),  # ICAO 9303-3 worked example
    ("091005513", "4"),  # DOMAIN.md Vietnamese example
    ("051091005513", "0"),
    ("", "0"),
])
def test_check_digit_matches_published_examples(data, digit):
    assert check_digit(data) == digit


def test_filler_counts_as_zero_so_check_digits_cannot_tell_it_from_0_or_a():
    # '<' = 0, '0' = 0, 'A' = 10 and 'K' = 20 are all 0 modulo 10: the blind spot the
    # property tests (test_mrz_properties.py) have to account for.
    assert len({check_digit(f"AB{c}12") for c in "<0AKU"}) == 1
    assert check_digit("AB112") != check_digit("AB212")


def test_check_digit_refuses_characters_outside_the_mrz_alphabet():
    for bad in ("a", "é", "?", " "):
        with pytest.raises(ValueError):
            check_digit(f"12{bad}")


# -- the Vietnamese TD1 -----------------------------------------------------------------------

def test_compose_vn_td1_reproduces_the_domain_example_and_parses_every_field():
    assert _vn() == VN_LINES
    result = parse_mrz(VN_LINES, today=TODAY)
    assert result.valid, result.errors
    assert result.format == "TD1" and result.is_vietnamese
    f = result.fields
    assert (f["document_code"], f["issuing_state"], f["nationality"]) == ("ID", "VNM", "VNM")
    assert f["document_number"] == "091005513"
    assert f["national_id"] == "051091005513"
    assert (f["birth_date"], f["sex"], f["expiry_date"]) == ("1991-10-05", "M", "2031-10-05")
    assert (f["surname"], f["given_names"]) == ("NGUYEN", "VAN DUC")
    assert f["province_name"] == "Quảng Ngãi"
    assert all(result.checks.values()) and "national_id" in result.checks
    assert result.errors == [] and result.warnings == []


def test_demo_citizen_without_expiry_gets_991231_and_no_expiry_date():
    lines = compose_vn_td1(national_id="001199000001", birth=date(1999, 3, 15), sex="F",
                           expiry=None, surname="Nguyễn", given="Thị Minh Anh")
    assert lines[1][8:14] == "991231"
    result = parse_mrz(lines, today=TODAY)
    assert result.valid
    assert result.fields["expiry_date"] is None and "vn_no_expiry" in result.warnings
    assert result.fields["birth_date"] == "1999-03-15"
    assert lines[2] == "NGUYEN<<THI<MINH<ANH<<<<<<<<<<"


def test_century_comes_from_the_id_number_not_a_guess():
    # Born 2003 (G=2): YY=03 alone could be 1903.
    lines = _vn(national_id="079203123456", birth=date(2003, 1, 2), sex="M")
    assert parse_mrz(lines, today=TODAY).fields["birth_date"] == "2003-01-02"
    old = _vn(national_id="079003123456", birth=date(1903, 1, 2), sex="M")
    assert parse_mrz(old, today=TODAY).fields["birth_date"] == "1903-01-02"


def test_names_lose_their_diacritics_and_long_names_are_truncated():
    assert transliterate("Đặng Thị Ngọc Ánh") == "DANG THI NGOC ANH"
    assert transliterate("  Lê   Văn-Hưng ") == "LE VAN HUNG"
    assert transliterate("Nguyễn") == transliterate("Nguye\u0302\u0303n")  # NFD input
    lines = _vn(surname="Tôn Nữ", given="Hoàng Phương Thảo Nguyên Khánh Ngọc")
    assert len(lines[2]) == 30 and lines[2].startswith("TON<NU<<HOANG<PHUONG<THAO<")
    assert parse_mrz(lines, today=TODAY).valid


@pytest.mark.parametrize("kwargs", [
    {"national_id": "05109100551"},
    {"national_id": "05109100551X"},
    {"sex": "X"},
])
def test_compose_vn_td1_refuses_malformed_input(kwargs):
    with pytest.raises(ValueError):
        _vn(**kwargs)


# -- forgeries and broken cards ------------------------------------------------------------

def test_a_wrong_document_number_check_digit_is_detected():
    lines = list(VN_LINES)
    lines[0] = lines[0][:14] + "5" + lines[0][15:]
    result = parse_mrz(lines, today=TODAY)
    assert not result.valid
    assert {"check_digit_document_number", "check_digit_composite"} <= set(result.errors)


def test_a_wrong_id_check_digit_is_detected():
    lines = list(VN_LINES)
    lines[0] = lines[0][:29] + "1"
    assert "check_digit_national_id" in parse_mrz(lines, today=TODAY).errors


def test_a_number_inconsistent_with_the_birth_year_fails_although_every_digit_checks():
    # 051**88**... claims 1988; the MRZ says 1991. Every ICAO check digit is right.
    result = parse_mrz(_vn(national_id="051088005513"), today=TODAY)
    assert result.check_digits_ok
    assert not result.valid and result.errors == ["vn_birth_year_mismatch"]


def test_a_number_inconsistent_with_the_sex_fails():
    result = parse_mrz(_vn(sex="F"), today=TODAY)  # G=0 means male
    assert result.check_digits_ok and result.errors == ["vn_sex_mismatch"]


def test_a_century_digit_putting_the_birth_in_the_future_fails():
    result = parse_mrz(_vn(national_id="051491005513"), today=TODAY)  # G=4: born 2191
    assert result.errors == ["vn_birth_date_implausible"]


def test_a_document_number_that_is_not_the_end_of_the_id_fails():
    line1 = VN_LINES[0][:5] + "091005514" + VN_LINES[0][14:]
    result = parse_mrz(recompute_td1_check_digits(line1, *VN_LINES[1:]), today=TODAY)
    assert result.check_digits_ok
    assert result.errors == ["vn_document_number_mismatch"]


def test_optional_data_without_a_12_digit_id_fails():
    line1 = VN_LINES[0][:15] + "05109100551X" + VN_LINES[0][27:]
    result = parse_mrz(recompute_td1_check_digits(line1, *VN_LINES[1:]), today=TODAY)
    assert result.check_digits_ok
    assert "vn_national_id_malformed" in result.errors and not result.valid


def test_an_expiry_that_is_not_a_date_fails_on_a_vietnamese_card():
    line2 = VN_LINES[1][:8] + "311305" + VN_LINES[1][14:]  # month 13
    result = parse_mrz(recompute_td1_check_digits(VN_LINES[0], line2, VN_LINES[2]), today=TODAY)
    assert result.check_digits_ok
    assert result.errors == ["vn_expiry_date_invalid"]


def test_an_unknown_province_is_only_a_warning():
    result = parse_mrz(_vn(national_id="003091005513"), today=TODAY)
    assert result.valid and result.warnings == ["vn_unknown_province"]
    assert result.fields["province_name"] is None


# -- other formats ------------------------------------------------------------------------

def test_icao_td3_specimen_fields():
    result = parse_mrz(["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
                        "L898902C36UTO7408122F1204159ZE184226B<<<<<10"], today=TODAY)
    assert result.format == "TD3" and result.valid
    f = result.fields
    assert (f["document_number"], f["surname"], f["given_names"]) == (
        "L898902C3", "ERIKSSON", "ANNA MARIA")
    assert (f["birth_date"], f["expiry_date"], f["optional_data"]) == (
        "1974-08-12", "2012-04-15", "ZE184226B")
    assert result.checks == {"document_number": True, "personal_number": True,
                             "birth_date": True, "expiry_date": True, "composite": True}
    assert "unknown_issuing_state" in result.warnings  # UTO: ICAO's fictional Utopia


def test_long_document_number_continues_in_the_optional_data():
    # ICAO 9303-5 §4.2.2 note j: 'D23145890' + '<' + '734' + check digit '9'.
    result = parse_mrz(["I<UTOD23145890<7349<<<<<<<<<<<",
                        "3407127M9507122UTO<<<<<<<<<<<2",
                        "STEVENSON<<PETER<JOHN<<<<<<<<<"], today=TODAY)
    assert result.valid
    assert result.fields["document_number"] == "D23145890734"
    assert result.fields["birth_date"] == "1934-07-12"


def test_visa_and_td2_are_told_apart_by_the_document_code():
    visa = parse_mrz(["V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
                      "L8988901C4XXX4009078F9612109<<<<<<<<"], today=TODAY)
    td2 = parse_mrz(["I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
                     "D231458907UTO7408122F1204159<<<<<<<6"], today=TODAY)
    assert (visa.format, td2.format) == ("MRV-B", "TD2")
    assert visa.valid and "composite" not in visa.checks
    assert td2.valid and td2.checks["composite"]


# -- tolerant input ------------------------------------------------------------------------

def test_spaces_blank_lines_and_one_string_are_accepted():
    spaced = ["  " + " ".join(line) + " \t" for line in VN_LINES]
    assert parse_mrz(spaced, today=TODAY).valid
    assert parse_mrz("\r\n".join(["", *VN_LINES, ""]), today=TODAY).valid


def test_surrounding_ocr_lines_are_ignored_with_a_warning():
    result = parse_mrz(["CAN CUOC CONG DAN", *VN_LINES, "x"], today=TODAY)
    assert result.valid and result.warnings == ["extra_lines_ignored"]
    assert result.lines == VN_LINES


@pytest.mark.parametrize(("text", "error"), [
    ("", "empty"),
    ([], "empty"),
    (None, "empty"),
    ("\n \n", "empty"),
    ("hello world", "unrecognized_format"),
    (VN_LINES[:2], "unrecognized_format"),
    ([line[:-1] for line in VN_LINES], "unrecognized_format"),
    ([line.lower() for line in VN_LINES], "invalid_characters"),
    (12345, "empty"),  # not text at all
    ("x" * 100_000, "unrecognized_format"),
])
def test_garbage_gives_invalid_with_an_error_code_never_an_exception(text, error):
    result = parse_mrz(text, today=TODAY)
    assert result.valid is False
    assert error in result.errors
    encoded = json.dumps(result.to_dict())
    assert len(encoded) < 2000  # garbage is not echoed back in full
    assert set(result.errors) <= set(ERROR_CODES)


def test_to_dict_has_the_documented_shape():
    data = parse_mrz(VN_LINES, today=TODAY).to_dict()
    assert data["valid"] is True and data["format"] == "TD1"
    assert {"document_code", "issuing_state", "document_number", "national_id", "birth_date",
            "sex", "expiry_date", "nationality", "surname", "given_names",
            "optional_data"} <= set(data["fields"])
    assert data["lines"] == VN_LINES
    assert json.loads(json.dumps(data)) == data


def test_every_reported_code_is_documented():
    broken = list(VN_LINES)
    broken[1] = broken[1][:6] + "0" + broken[1][7:]
    for lines in (VN_LINES, broken, _vn(national_id="003088005513", sex="F")):
        result = parse_mrz(lines, today=TODAY)
        assert set(result.errors) <= set(ERROR_CODES)
        assert set(result.warnings) <= set(WARNING_CODES)
