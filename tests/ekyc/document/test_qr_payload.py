"""The card QR payload: 2021 (7 fields) and tolerant 2024 variants (DOMAIN.md §2)."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest

from ekyc.document.qr_payload import ERROR_CODES, QRPayloadError, parse_cccd_qr

DOMAIN_EXAMPLE = ("001099012345||Nguyễn Văn An|15031999|Nam|"
                  "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội|01072021")


def test_domain_example_2021():
    qr = parse_cccd_qr(DOMAIN_EXAMPLE)
    assert qr.national_id == "001099012345" and qr.old_id == ""
    assert qr.full_name == "Nguyễn Văn An"
    assert (qr.birth, qr.sex, qr.issue_date) == (date(1999, 3, 15), "M", date(2021, 7, 1))
    assert qr.address == "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội"
    assert qr.extra == []
    assert qr.to_dict()["birth"] == "1999-03-15"


def test_old_number_and_female():
    qr = parse_cccd_qr("001199000001|012345678|Nguyễn Thị Minh Anh|15031999|Nữ|Hà Nội|20042021")
    assert (qr.old_id, qr.sex) == ("012345678", "F")


def test_2024_variant_with_more_and_empty_fields_keeps_the_extras():
    text = ("001199000001||Nguyễn Thị Minh Anh|15031999|Nữ|Số 1 Tràng Tiền, Hà Nội||"
            "012345678|Nguyễn Văn Bố|Trần Thị Mẹ|")
    qr = parse_cccd_qr(text)
    assert qr.issue_date is None
    assert qr.extra == ["012345678", "Nguyễn Văn Bố", "Trần Thị Mẹ", ""]


def test_nfd_text_bom_crlf_and_bytes_are_accepted():
    nfd = unicodedata.normalize("NFD", DOMAIN_EXAMPLE.replace("Nam", "Nữ"))
    qr = parse_cccd_qr("\ufeff" + nfd + "\r\n")
    assert qr.sex == "F" and qr.full_name == "Nguyễn Văn An"  # NFC on the way out
    assert parse_cccd_qr(DOMAIN_EXAMPLE.encode("utf-8")) == parse_cccd_qr(DOMAIN_EXAMPLE)


def test_utf8_misread_as_latin1_by_a_scanner_is_repaired():
    garbled = DOMAIN_EXAMPLE.encode("utf-8").decode("latin-1")
    assert parse_cccd_qr(garbled).full_name == "Nguyễn Văn An"


@pytest.mark.parametrize("sex", ["Nam", "NAM", " nam ", "Nữ", "NỮ", "Nu"])
def test_sex_spellings(sex):
    expected = "M" if sex.strip().lower() == "nam" else "F"
    assert parse_cccd_qr(DOMAIN_EXAMPLE.replace("|Nam|", f"|{sex}|")).sex == expected


@pytest.mark.parametrize(("text", "code"), [
    ("", "empty"),
    ("   \n", "empty"),
    (None, "not_text"),
    (b"\xff\xfe\x00", "not_text"),
    ("https://example.com/not-a-card", "too_few_fields"),
    ("a|b|c|d|e|f", "too_few_fields"),
    (DOMAIN_EXAMPLE.replace("001099012345", "00109901234"), "invalid_national_id"),
    (DOMAIN_EXAMPLE.replace("||", "|12345|"), "invalid_old_id"),
    (DOMAIN_EXAMPLE.replace("Nguyễn Văn An", " "), "missing_name"),
    (DOMAIN_EXAMPLE.replace("15031999", "31021999"), "invalid_birth_date"),
    (DOMAIN_EXAMPLE.replace("15031999", "1999-03-15"), "invalid_birth_date"),
    (DOMAIN_EXAMPLE.replace("|Nam|", "|Male|"), "invalid_sex"),
    (DOMAIN_EXAMPLE.replace("01072021", "2021"), "invalid_issue_date"),
    ("|" * 10_000, "too_long"),
])
def test_garbage_is_refused_with_a_code(text, code):
    with pytest.raises(QRPayloadError) as info:
        parse_cccd_qr(text)
    assert info.value.code == code and code in ERROR_CODES
    assert str(info.value)  # a readable message


def test_genuine_text_that_happens_to_be_latin1_is_left_alone():
    text = DOMAIN_EXAMPLE.replace("Nguyễn Văn An", "Lê Hà").replace(
        "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội", "Hà")
    assert parse_cccd_qr(text).full_name == "Lê Hà"
