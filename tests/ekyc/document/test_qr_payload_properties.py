"""Property-based tests of the QR payload parser (Hypothesis): it raises nothing but
`QRPayloadError` on any input, and a payload built from any valid citizen round-trips."""

from __future__ import annotations

import string
import unicodedata
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ekyc.document.idnumber import PROVINCES, compose_national_id
from ekyc.document.qr_payload import ERROR_CODES, QRPayloadError, parse_cccd_qr

SETTINGS = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
GOOD = ["001099012345", "", "Nguyễn Văn An", "15031999", "Nam",
        "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội", "01072021"]


def _parse_or_refuse(value) -> None:
    try:
        qr = parse_cccd_qr(value)
    except QRPayloadError as exc:
        assert exc.code in ERROR_CODES
        return
    assert len(qr.national_id) == 12 and qr.sex in ("M", "F")
    assert qr.to_dict()["national_id"] == qr.national_id


@SETTINGS
@given(st.text())
def test_never_raises_anything_but_qr_payload_error_on_text(text):
    _parse_or_refuse(text)


@SETTINGS
@given(st.binary(max_size=400))
def test_never_raises_anything_but_qr_payload_error_on_bytes(data):
    _parse_or_refuse(data)
    _parse_or_refuse(data.decode("latin-1"))


@SETTINGS
@given(st.lists(st.text(max_size=20) | st.sampled_from(GOOD), min_size=5, max_size=12))
def test_never_raises_on_pipe_separated_fields(fields):
    # Mixes real field values with random ones so parsing gets past the first checks.
    _parse_or_refuse("|".join(fields))


@SETTINGS
@given(st.integers(0, len(GOOD) - 1), st.text(max_size=30))
def test_never_raises_when_one_field_of_a_good_payload_is_replaced(index, value):
    fields = list(GOOD)
    fields[index] = value
    _parse_or_refuse("|".join(fields))


_LETTERS = "aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạếềểễệốồổỗộứừửữựĐÂÊÔ"
_name = st.text(alphabet=_LETTERS + " ", min_size=1, max_size=30).filter(lambda s: s.strip())
# Realistic text: Vietnamese letters, ASCII and whitespace (an address, an extra field).
_field = st.text(alphabet=_LETTERS + string.printable.replace("|", ""), max_size=60)


@SETTINGS
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 6, 1)),
       st.sampled_from("MF"), st.sampled_from(sorted(PROVINCES)),
       st.from_regex(r"\A[0-9]{6}\Z"), _name, _field,
       st.none() | st.dates(min_value=date(2016, 1, 1), max_value=date(2025, 6, 1)),
       st.booleans(), st.lists(_field, max_size=4))
def test_payload_of_any_valid_citizen_round_trips(birth, sex, province, serial, name, address,
                                                   issued, nfd, extra):
    number = compose_national_id(province, birth.year, sex, serial)
    text = "|".join([number, "", name, birth.strftime("%d%m%Y"), "Nam" if sex == "M" else "Nữ",
                     address, issued.strftime("%d%m%Y") if issued else "", *extra])
    if nfd:
        text = unicodedata.normalize("NFD", text)
    qr = parse_cccd_qr(text)
    assert (qr.national_id, qr.birth, qr.sex, qr.issue_date) == (number, birth, sex, issued)
    assert qr.full_name == " ".join(unicodedata.normalize("NFC", name).split())
    assert qr.address == " ".join(unicodedata.normalize("NFC", address).split())
    assert len(qr.extra) == len(extra)
