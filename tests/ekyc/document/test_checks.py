"""Card cross-checks: number structure, QR vs MRZ vs printed fields, expiry, severities."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest

from ekyc.document.checks import (
    FINDING_CODES,
    FINDINGS,
    REJECT,
    REVIEW,
    WARN,
    cross_check,
    worst_severity,
)
from ekyc.document.mrz import compose_vn_td1, parse_mrz
from ekyc.document.qr_payload import parse_cccd_qr
from tests.ekyc.document import recompute_td1_check_digits

TODAY = date(2025, 6, 1)
DEMO = {"national_id": "001199000001", "full_name": "Nguyễn Thị Minh Anh",
        "birth": date(1999, 3, 15), "sex": "F", "expiry": date(2039, 3, 15),
        "residence": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội", "issued": date(2021, 7, 1)}


def _qr(**overrides):
    c = DEMO | overrides
    return parse_cccd_qr("|".join([
        c["national_id"], "", c["full_name"], c["birth"].strftime("%d%m%Y"),
        "Nam" if c["sex"] == "M" else "Nữ", c["residence"], c["issued"].strftime("%d%m%Y")]))


def _mrz(**overrides):
    c = DEMO | overrides
    family, _, given = c["full_name"].partition(" ")
    return parse_mrz(compose_vn_td1(national_id=c["national_id"], birth=c["birth"], sex=c["sex"],
                                    expiry=c["expiry"], surname=family, given=given),
                     today=TODAY)


def _printed(**overrides):
    c = DEMO | overrides
    printed = {"national_id": c["national_id"], "full_name": c["full_name"],
               "date_of_birth": c["birth"].strftime("%d/%m/%Y"),
               "sex": "Nam" if c["sex"] == "M" else "Nữ", "nationality": "Việt Nam",
               "place_of_origin": "Hà Nội", "place_of_residence": c["residence"],
               "expiry": c["expiry"].strftime("%d/%m/%Y") if c["expiry"] else "Không thời hạn"}
    printed.update({k: v for k, v in overrides.items() if k in printed})
    return printed


def _codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_a_genuine_card_has_no_finding():
    assert cross_check(_qr(), _mrz(), _printed(), TODAY) == []


def test_printed_fields_in_other_spellings_still_agree():
    printed = _printed(date_of_birth="15-03-1999", expiry=date(2039, 3, 15),
                       national_id="001 199 000 001")
    printed["sex"] = unicodedata.normalize("NFD", "Nữ")
    printed["full_name"] = unicodedata.normalize("NFD", "NGUYỄN  THỊ MINH ANH")
    printed["place_of_residence"] = "Số 1 Tràng Tiền,Hoàn Kiếm , Hà Nội"
    assert cross_check(_qr(), _mrz(), printed, TODAY) == []


def test_a_card_without_expiry_is_not_expired():
    assert cross_check(_qr(), _mrz(expiry=None), _printed(expiry=None), TODAY) == []


# -- the forgery classes of the synthetic generator ---------------------------------------

def test_forgery_qr_and_mrz_disagree():
    findings = cross_check(_qr(), _mrz(national_id="001199000002"), None, TODAY)
    assert ("qr_mrz_id_mismatch", REJECT) in [(f.code, f.severity) for f in findings]
    assert worst_severity(findings) == REJECT


def test_forgery_wrong_check_digit():
    mrz = _mrz()
    broken = list(mrz.lines)
    broken[1] = broken[1][:6] + str((int(broken[1][6]) + 1) % 10) + broken[1][7:]
    findings = cross_check(_qr(), parse_mrz(broken, today=TODAY), None, TODAY)
    assert "mrz_check_digit" in _codes(findings)
    # the composite covers the birth date's check digit too
    assert next(f for f in findings if f.code == "mrz_check_digit").detail == (
        "birth_date, composite")


def test_forgery_number_inconsistent_with_the_date_of_birth():
    forged = "001198000001"  # claims 1998 on a card saying 1999
    findings = cross_check(_qr(national_id=forged), _mrz(national_id=forged), None, TODAY)
    codes = [(f.code, f.severity, f.detail) for f in findings]
    assert ("id_birth_year_mismatch", REJECT, "QR") in codes
    assert ("id_birth_year_mismatch", REJECT, "MRZ") in codes


def test_number_inconsistent_with_the_sex():
    findings = cross_check(_qr(sex="M"), None, None, TODAY)
    assert ("id_sex_mismatch", REJECT) in [(f.code, f.severity) for f in findings]


def test_number_from_the_wrong_century():
    findings = cross_check(_qr(birth=date(1899, 3, 15)), None, None, TODAY)
    assert "id_century_mismatch" in _codes(findings)


def test_qr_and_mrz_birth_date_and_sex_disagree():
    mrz = _mrz(birth=date(1999, 4, 15))
    assert "qr_mrz_birth_date_mismatch" in _codes(cross_check(_qr(), mrz, None, TODAY))
    swapped = _qr(national_id="001099000001", sex="M")  # a consistent male QR
    assert "qr_mrz_sex_mismatch" in _codes(cross_check(swapped, _mrz(), None, TODAY))


# -- names --------------------------------------------------------------------------------

def test_names_are_compared_without_diacritics_against_the_mrz():
    qr = _qr(full_name="Đặng Thị Ngọc Ánh")
    assert cross_check(qr, _mrz(full_name="Đặng Thị Ngọc Ánh"), None, TODAY) == []
    findings = cross_check(qr, _mrz(full_name="Đặng Thị Ngọc Anh Thư"), None, TODAY)
    assert [(f.code, f.severity) for f in findings] == [("qr_mrz_name_mismatch", REVIEW)]


def test_a_truncated_mrz_name_matches_its_full_form():
    long = "Tôn Nữ Hoàng Phương Thảo Nguyên Khánh Ngọc"
    mrz = _mrz(full_name=long)
    assert not mrz.lines[2].endswith("<")
    assert cross_check(_qr(full_name=long), mrz, None, TODAY) == []


# -- printed (OCR) disagreements are for review --------------------------------------------

@pytest.mark.parametrize(("printed", "code"), [
    ({"national_id": "001199000007"}, "printed_id_mismatch"),
    ({"full_name": "Nguyễn Thị Minh Ánh"}, "printed_name_mismatch"),  # diacritics matter here
    ({"date_of_birth": "16/03/1999"}, "printed_birth_date_mismatch"),
    ({"sex": "Nam"}, "printed_sex_mismatch"),
    ({"nationality": "Lào"}, "printed_nationality_mismatch"),
    ({"place_of_residence": "Số 9 Tràng Tiền, Hoàn Kiếm, Hà Nội"}, "printed_residence_mismatch"),
    ({"expiry": "15/03/2040"}, "printed_expiry_mismatch"),
    ({"expiry": "Không thời hạn"}, "printed_expiry_mismatch"),
])
def test_printed_disagreements_are_sent_to_review(printed, code):
    findings = cross_check(_qr(), _mrz(), _printed() | printed, TODAY)
    assert code in _codes(findings)
    assert worst_severity(findings) == REVIEW


def test_printed_number_inconsistent_with_printed_birth_date_is_for_review():
    printed = {"national_id": "001198000001", "date_of_birth": "15/03/1999"}
    findings = cross_check(None, None, printed, TODAY)
    assert {"printed_id_structure_mismatch", "no_machine_readable_data"} <= set(_codes(findings))
    assert worst_severity(findings) == REVIEW


def test_unreadable_printed_values_are_not_findings():
    printed = {"date_of_birth": "1?/0?/19", "expiry": "####", "sex": "N?m", "full_name": " "}
    assert cross_check(_qr(), _mrz(), printed, TODAY) == []


# -- expiry, dates ------------------------------------------------------------------------

def test_expired_card_is_rejected():
    findings = cross_check(_qr(), _mrz(expiry=date(2025, 5, 31)), None, TODAY)
    assert [(f.code, f.severity) for f in findings] == [("card_expired", REJECT)]
    assert cross_check(_qr(), _mrz(expiry=TODAY), None, TODAY) == []  # valid on its last day


def test_printed_expiry_alone_is_for_review():
    findings = cross_check(_qr(), None, {"expiry": "31/05/2025"}, TODAY)
    assert "printed_card_expired" in _codes(findings)


def test_qr_issue_date_in_the_future_or_before_birth():
    assert "qr_issue_date_invalid" in _codes(
        cross_check(_qr(issued=date(2025, 6, 2)), None, None, TODAY))
    assert "qr_issue_date_invalid" in _codes(
        cross_check(_qr(issued=date(1998, 1, 1)), None, None, TODAY))


# -- MRZ problems -------------------------------------------------------------------------

def test_mrz_structural_problems_map_to_reject_findings():
    line1, line2, line3 = _mrz().lines
    cases = {
        "mrz_document_number_mismatch": (line1[:5] + "199000002" + line1[14:], line2),
        "mrz_national_id_malformed": (line1[:15] + "00119900000X" + line1[27:], line2),
        "mrz_expiry_date_invalid": (line1, line2[:8] + "391315" + line2[14:]),
    }
    for code, (l1, l2) in cases.items():
        mrz = parse_mrz(recompute_td1_check_digits(l1, l2, line3), today=TODAY)
        assert mrz.check_digits_ok
        findings = cross_check(None, mrz, None, TODAY)
        assert code in _codes(findings) and FINDINGS[code][0] == REJECT
        assert worst_severity(findings) == REJECT


def test_unreadable_or_foreign_mrz_is_for_review():
    garbage = parse_mrz("not an mrz", today=TODAY)
    assert _codes(cross_check(_qr(), garbage, None, TODAY)) == ["mrz_unreadable"]
    utopia = parse_mrz(["I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6",
                        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"], today=TODAY)
    findings = cross_check(_qr(), utopia, None, TODAY)
    assert _codes(findings) == ["mrz_not_vietnamese"] and worst_severity(findings) == REVIEW


# -- sources, provinces -------------------------------------------------------------------

def test_missing_sources():
    assert _codes(cross_check(None, _mrz(), None, TODAY)) == ["qr_missing"]
    assert _codes(cross_check(_qr(), None, None, TODAY)) == ["mrz_missing"]
    assert _codes(cross_check(None, None, None, TODAY)) == ["no_machine_readable_data"]
    assert worst_severity(cross_check(_qr(), None, None, TODAY)) == WARN
    assert worst_severity([]) is None


def test_unknown_province_is_a_warning():
    number = "003199000001"
    findings = cross_check(_qr(national_id=number), _mrz(national_id=number), None, TODAY)
    assert [(f.code, f.severity) for f in findings] == [("id_unknown_province", WARN)]


# -- the code table -----------------------------------------------------------------------

def test_every_code_has_a_severity_and_a_description():
    assert set(FINDING_CODES) == set(FINDINGS)
    for code, (severity, text) in FINDINGS.items():
        assert severity in (REJECT, REVIEW, WARN) and text and code == code.lower()


def test_details_never_carry_personal_data():
    forged = "001198000001"
    findings = cross_check(_qr(national_id=forged), _mrz(national_id="001199000002"),
                           _printed(national_id="001199000009", full_name="Trần Văn B"), TODAY)
    assert findings
    for f in findings:
        for secret in (forged, "001199000002", "001199000009", "Trần", "Nguyễn", "1999"):
            assert secret not in f.detail
        assert f.to_dict() == {"code": f.code, "severity": f.severity, "detail": f.detail}
