"""The Vietnamese personal identification number (số định danh cá nhân): `PPP G YY RRRRRR`.

Decree 137/2015/ND-CP Art. 13 (structure) and Circular 07/2016/TT-BCA Appendix 1 (province
codes), as summarised in DOMAIN.md section 1:

- `PPP`: province or city where the birth was registered (table below, the 63 provinces before
  the 2025 merger; an unknown code is a warning, never a rejection: no post-merger table exists);
- `G`: century and sex: 0/1 = male/female born 1900-1999, 2/3 = 2000s, 4/5 = 2100s, 6/7 = 2200s,
  8/9 = 2300s (even = male, odd = female);
- `YY`: last two digits of the birth year;
- `RRRRRR`: random.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

PROVINCES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn",
    "008": "Tuyên Quang", "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu",
    "014": "Sơn La", "015": "Yên Bái", "017": "Hòa Bình", "019": "Thái Nguyên",
    "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang", "025": "Phú Thọ",
    "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định",
    "037": "Ninh Bình", "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh",
    "044": "Quảng Bình", "045": "Quảng Trị", "046": "Thừa Thiên Huế", "048": "Đà Nẵng",
    "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định", "054": "Phú Yên",
    "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng",
    "070": "Bình Phước", "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai",
    "077": "Bà Rịa-Vũng Tàu", "079": "TP. Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang",
    "083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long", "087": "Đồng Tháp",
    "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ", "093": "Hậu Giang",
    "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}

# Codes returned by `check_against` (and reused by `checks.cross_check`).
MISMATCH_CODES: dict[str, str] = {
    "id_birth_year_mismatch": "the ID number's YY digits differ from the birth year",
    "id_century_mismatch": "the ID number's century digit differs from the birth century",
    "id_sex_mismatch": "the ID number's century/sex digit differs from the holder's sex",
}


class InvalidNationalId(ValueError):
    """The text is not a 12-digit personal identification number."""


@dataclass(frozen=True)
class NationalId:
    """A parsed 12-digit number. `province_name` is None for a code not in `PROVINCES`."""

    province_code: str
    province_name: str | None
    century_sex_digit: int
    sex: str  # 'M' or 'F'
    birth_year_two: int  # 0..99
    century: int  # 1900, 2000, ... 2300
    number: str = ""
    serial: str = ""

    @property
    def known_province(self) -> bool:
        """True when the province code is in the (pre-2025) table."""
        return self.province_name is not None

    @property
    def birth_year(self) -> int:
        """The full birth year the number encodes."""
        return self.century + self.birth_year_two


def is_national_id(s: object) -> bool:
    """True when `s` is a string of exactly 12 ASCII digits."""
    return isinstance(s, str) and len(s) == 12 and s.isascii() and s.isdigit()


def parse_national_id(s: str) -> NationalId:
    """Split a 12-digit number into its parts; raises `InvalidNationalId` on anything else.

    Surrounding whitespace is ignored; inner characters must all be ASCII digits.
    """
    text = s.strip() if isinstance(s, str) else s
    if not is_national_id(text):
        raise InvalidNationalId("a personal identification number is 12 digits")
    g = int(text[3])
    code = text[:3]
    return NationalId(
        province_code=code,
        province_name=PROVINCES.get(code),
        century_sex_digit=g,
        sex="M" if g % 2 == 0 else "F",
        birth_year_two=int(text[4:6]),
        century=1900 + 100 * (g // 2),
        number=text,
        serial=text[6:],
    )


def century_sex_digit(birth_year: int, sex: str) -> int:
    """The `G` digit for a birth year (1900-2399) and sex 'M'/'F'; ValueError outside."""
    if not 1900 <= birth_year <= 2399:
        raise ValueError("birth year outside 1900-2399 has no century digit")
    if sex not in ("M", "F"):
        raise ValueError("sex must be 'M' or 'F'")
    return 2 * ((birth_year - 1900) // 100) + (1 if sex == "F" else 0)


def compose_national_id(province_code: str, birth_year: int, sex: str, serial: str) -> str:
    """Build a structurally consistent number from its parts (test data, synthetic cards)."""
    if not (len(province_code) == 3 and province_code.isdigit()):
        raise ValueError("province code is 3 digits")
    if not (len(serial) == 6 and serial.isdigit()):
        raise ValueError("serial is 6 digits")
    g = century_sex_digit(birth_year, sex)
    return f"{province_code}{g}{birth_year % 100:02d}{serial}"


def check_against(nid: NationalId, birth: date | None, sex: str | None) -> list[str]:
    """Mismatch codes (see `MISMATCH_CODES`) between the number and a birth date / sex.

    A None birth date or sex (unknown) is not compared. An unknown province is not a
    mismatch: callers look at `nid.known_province` and warn.
    """
    problems: list[str] = []
    if birth is not None:
        if birth.year % 100 != nid.birth_year_two:
            problems.append("id_birth_year_mismatch")
        if birth.year - birth.year % 100 != nid.century:
            problems.append("id_century_mismatch")
    if sex in ("M", "F") and sex != nid.sex:
        problems.append("id_sex_mismatch")
    return problems
