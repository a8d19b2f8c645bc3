"""The 12-digit personal identification number: `PPP G YY RRRRRR` (DOMAIN.md §1)."""

from __future__ import annotations

from datetime import date

import pytest

from ekyc.document.idnumber import (
    MISMATCH_CODES,
    PROVINCES,
    InvalidNationalId,
    century_sex_digit,
    check_against,
    compose_national_id,
    parse_national_id,
)


def test_domain_example_dong_thap_male_1984():
    nid = parse_national_id("087084000999")
    assert (nid.province_code, nid.province_name) == ("087", "Đồng Tháp")
    assert (nid.century_sex_digit, nid.sex, nid.century, nid.birth_year_two) == (0, "M", 1900, 84)
    assert nid.birth_year == 1984 and nid.serial == "000999" and nid.known_province


@pytest.mark.parametrize(("digit", "sex", "century"), [
    (0, "M", 1900), (1, "F", 1900), (2, "M", 2000), (3, "F", 2000), (4, "M", 2100),
    (5, "F", 2100), (6, "M", 2200), (7, "F", 2200), (8, "M", 2300), (9, "F", 2300),
])
def test_century_and_sex_digit(digit, sex, century):
    nid = parse_national_id(f"001{digit}05123456")
    assert (nid.sex, nid.century, nid.birth_year) == (sex, century, century + 5)
    assert century_sex_digit(century + 5, sex) == digit


def test_the_province_table_has_the_63_pre_merger_provinces():
    assert len(PROVINCES) == 63
    assert PROVINCES["001"] == "Hà Nội" and PROVINCES["079"] == "TP. Hồ Chí Minh"
    assert all(len(code) == 3 and code.isdigit() for code in PROVINCES)


def test_an_unknown_province_parses_with_no_name():
    nid = parse_national_id("003199000001")
    assert nid.province_name is None and not nid.known_province


@pytest.mark.parametrize("text", [
    "", "08708400099", "0870840009990", "08708400099O", "087 084 000 999", "٠٨٧٠٨٤٠٠٠٩٩٩",
    "-87084000999",
])
def test_anything_but_12_ascii_digits_is_refused(text):
    with pytest.raises(InvalidNationalId):
        parse_national_id(text)


def test_surrounding_whitespace_is_ignored():
    assert parse_national_id(" 087084000999\n").number == "087084000999"


def test_check_against_reports_each_mismatch():
    nid = parse_national_id("001199000001")  # female, 1999
    assert check_against(nid, date(1999, 3, 15), "F") == []
    assert check_against(nid, date(1998, 3, 15), "F") == ["id_birth_year_mismatch"]
    assert check_against(nid, date(2099, 3, 15), "F") == ["id_century_mismatch"]
    assert check_against(nid, date(1999, 3, 15), "M") == ["id_sex_mismatch"]
    assert check_against(nid, None, None) == []
    assert set(check_against(nid, date(2000, 1, 1), "M")) == set(MISMATCH_CODES)


def test_compose_national_id_is_consistent_by_construction():
    number = compose_national_id("079", 2004, "F", "123456")
    assert number == "079304123456"
    assert check_against(parse_national_id(number), date(2004, 2, 29), "F") == []
    with pytest.raises(ValueError):
        compose_national_id("79", 2004, "F", "123456")
    with pytest.raises(ValueError):
        century_sex_digit(1899, "M")
