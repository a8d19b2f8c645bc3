"""Deterministic synthetic citizens for the population-register stub and the test-card generator.

`synthetic_citizens(count, seed)` is pure: the same arguments give the same list on every machine
(no database, no clock, no network). It is prefix-stable: the first 300 citizens of a 10,000 run
are exactly `synthetic_citizens(300)`. Facts it follows (DOMAIN.md section 1 and the Law on
Identification):

- the 12-digit number is `PPP G YY RRRRRR`: birth-registration province, century/sex digit
  (0/1 = male/female 1900s, 2/3 = 2000s), the birth year's last two digits, six random digits;
  numbers are unique;
- every citizen is at least 14 on `REFERENCE_DATE`, and holds a chip card issued after their
  14th birthday and no earlier than 2021-01-01 (chip cards), valid on `REFERENCE_DATE`;
- a card expires on the 25th, 40th or 60th birthday, whichever comes first more than two years
  after issue (a card issued within two years before a change age stays valid until the next);
  a card issued after the 58th birthday never expires (`card_expiry_date` None; the MRZ then
  shows 991231, see ekyc.document.mrz);
- about 1 % are deceased and 1 % have a revoked card; about 40 % of those born before 2000 also
  have an old 9-digit number (CMND);
- citizen #0 is the demo citizen 001199000001 Nguyễn Thị Minh Anh.

Portraits: the faces-dev manifest (`EKYC_TEST_DATA`/faces-dev/manifest.json) lists LFW
identities; citizen *i* gets identity *i* in manifest order (order of first appearance), so
the first ~283 citizens have a portrait and the rest have none. The identity's first image is
the register portrait (`portrait_file`); its other images are what a synthetic card or selfie for
that citizen uses (`identity_images`). LFW has no sex labels, so a citizen's sex is independent of
the face assigned: a female citizen may have a male face. No other field depends on whether the
data folder exists; without it `portrait_file` is None for everyone.
"""

from __future__ import annotations

import json
import os
import random
import unicodedata
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from register.provinces import BY_CODE, PROVINCES, Province

DEFAULT_COUNT = 10_000
DEFAULT_SEED = 20261123
# The "as of" date of the synthetic population, fixed so that the output never depends on the clock.
REFERENCE_DATE = date(2026, 11, 1)
CHIP_CARDS_SINCE = date(2021, 1, 1)
CARD_CHANGE_AGES = (25, 40, 60)
MIN_AGE, MAX_AGE = 14, 90
DECEASED_RATE = 0.01
REVOKED_RATE = 0.01
OLD_ID_RATE = 0.40

STATUSES = ("alive", "deceased", "card_revoked")


@dataclass(frozen=True)
class Citizen:
    """One register record. Names are NFC with diacritics; `given_name` includes middle names."""

    national_id: str
    full_name: str
    family_name: str
    given_name: str
    date_of_birth: date
    sex: str  # 'M' | 'F'
    residence: str
    province_code: str
    hometown: str
    card_issue_date: date
    card_expiry_date: date | None  # None: valid for life (issued after the 58th birthday)
    old_id: str  # 9 digits or ''
    status: str  # 'alive' | 'deceased' | 'card_revoked'
    portrait_file: str | None  # relative to faces-dev, e.g. 'Wang_Yi/1.jpg'

    @property
    def province_name(self) -> str:
        return BY_CODE[self.province_code].name

    def to_dict(self) -> dict:
        """JSON-safe dict (dates as ISO strings)."""
        out = asdict(self)
        for key in ("date_of_birth", "card_issue_date", "card_expiry_date"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


DEMO_CITIZEN = Citizen(
    national_id="001199000001",
    full_name="Nguyễn Thị Minh Anh",
    family_name="Nguyễn",
    given_name="Thị Minh Anh",
    date_of_birth=date(1999, 3, 15),
    sex="F",
    residence="Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội",
    province_code="001",
    hometown="Hoàn Kiếm, Hà Nội",
    card_issue_date=date(2024, 4, 10),
    card_expiry_date=date(2039, 3, 15),  # 40th birthday
    old_id="",
    status="alive",
    portrait_file=None,
)

# --- names -----------------------------------------------------------------------------------
# Family names with rough national frequencies (percent); the pairs Hoàng/Huỳnh and Vũ/Võ are the
# same name in northern and southern use.
FAMILY_NAMES = (
    ("Nguyễn", 38.0), ("Trần", 11.0), ("Lê", 9.5), ("Phạm", 7.0), ("Hoàng", 5.1), ("Phan", 4.5),
    ("Vũ", 3.9), ("Đặng", 2.1), ("Bùi", 2.0), ("Đỗ", 1.4), ("Hồ", 1.3), ("Ngô", 1.3),
    ("Dương", 1.0), ("Lý", 0.5), ("Đinh", 0.5), ("Trương", 0.5), ("Lương", 0.4), ("Mai", 0.4),
    ("Tô", 0.3), ("Cao", 0.3), ("Lâm", 0.3), ("Đoàn", 0.3), ("Trịnh", 0.3), ("Hà", 0.3),
    ("Vương", 0.2), ("Tạ", 0.2), ("Châu", 0.2), ("Quách", 0.1), ("Kiều", 0.1), ("Lưu", 0.2),
)
SOUTHERN_VARIANT = {"Hoàng": "Huỳnh", "Vũ": "Võ"}
MIDDLE_NAMES = {
    "M": ("Văn", "Văn", "Văn", "Hữu", "Đức", "Minh", "Quốc", "Thành", "Công", "Xuân", "Đình",
          "Quang", "Trọng", "Tuấn", "Gia", "Hoàng", "Ngọc", "Thanh"),
    "F": ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Minh", "Kim", "Hồng", "Phương", "Bảo",
          "Mai", "Hoài", "Diệu", "Khánh", "Thùy", "Tuyết"),
}
GIVEN_NAMES = {
    "M": ("Anh", "Bảo", "Bình", "Cường", "Dũng", "Duy", "Đạt", "Đức", "Hải", "Hiếu", "Hoàng",
          "Hùng", "Huy", "Khang", "Khoa", "Kiên", "Long", "Lộc", "Minh", "Nam", "Nghĩa", "Phong",
          "Phúc", "Quân", "Quang", "Sơn", "Tài", "Thắng", "Thành", "Thịnh", "Trung", "Tuấn",
          "Tùng", "Việt", "Vinh", "Vũ", "Khải", "Lâm", "Toàn", "Hưng"),
    "F": ("An", "Anh", "Châu", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa",
          "Hồng", "Hương", "Huyền", "Lan", "Linh", "Loan", "Ly", "Mai", "My", "Nga", "Ngân",
          "Ngọc", "Nhung", "Oanh", "Phương", "Quyên", "Quỳnh", "Tâm", "Thảo", "Thủy", "Trang",
          "Trâm", "Uyên", "Vân", "Yến", "Nhi", "Thư", "Hạ", "Diệp"),
}
# A second, unisex middle element ("Nguyễn Thị Minh Anh") for some names.
EXTRA_MIDDLE = {
    "M": ("Minh", "Thanh", "Bảo", "Hoàng", "Gia", "Khánh", "Anh", "Quang", "Nhật", "Đăng"),
    "F": ("Minh", "Ngọc", "Thanh", "Bảo", "Khánh", "Phương", "Thu", "Hải", "Tường", "Lan"),
}
STREETS = (
    "Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Hai Bà Trưng", "Lý Thường Kiệt", "Quang Trung",
    "Nguyễn Trãi", "Lê Duẩn", "Điện Biên Phủ", "Hùng Vương", "Phan Đình Phùng", "Nguyễn Du",
    "Bà Triệu", "Lê Thánh Tông", "Trần Phú", "Hoàng Diệu", "Nguyễn Thị Minh Khai", "Võ Thị Sáu",
    "Cách Mạng Tháng Tám", "Nguyễn Văn Cừ", "Phạm Văn Đồng", "Lạc Long Quân", "Âu Cơ",
    "Tôn Đức Thắng", "Nguyễn Chí Thanh", "Láng Hạ", "Kim Mã", "Đội Cấn", "Trường Chinh",
    "Giải Phóng", "Bạch Đằng", "Ngô Quyền", "Lê Hồng Phong", "Chu Văn An", "Phan Chu Trinh",
)
HAMLETS = ("Thôn Đông", "Thôn Tây", "Thôn Nam", "Thôn Bắc", "Thôn Trung", "Xóm Mới", "Ấp 1",
           "Ấp 2", "Ấp 3", "Tổ 5", "Tổ 12", "Khu phố 3")
COMMUNES = ("Xã Tân Lập", "Xã Hòa Bình", "Xã Thống Nhất", "Xã Quyết Thắng", "Xã Phú Thịnh",
            "Xã An Phú", "Xã Tân Hiệp", "Xã Bình Minh", "Phường 1", "Phường 2", "Phường 7",
            "Thị trấn Phú Lộc")


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def _birthday(dob: date, age: int) -> date:
    """The date a person born on `dob` turns `age` (29 February -> 28 February)."""
    try:
        return dob.replace(year=dob.year + age)
    except ValueError:
        return dob.replace(year=dob.year + age, day=28)


def card_expiry(dob: date, issued: date) -> date | None:
    """Expiry of a card issued on `issued`: the first change age (25, 40, 60) whose birthday is
    more than two years after issue; None when there is none (issued after the 58th birthday)."""
    for age in CARD_CHANGE_AGES:
        change = _birthday(dob, age)
        if change > _birthday(issued, 2):
            return change
    return None


def century_sex_digit(year: int, sex: str) -> str:
    """`G` of DOMAIN.md: 0/1 for 1900-1999, 2/3 for 2000-2099 ... even = male, odd = female."""
    return str((year // 100 - 19) * 2 + (1 if sex == "F" else 0))


def _random_day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, (last - first).days))


def _dob(rng: random.Random) -> date:
    # Ages roughly like the adult population: fewer people above 70.
    age = min(MAX_AGE, MIN_AGE + int(rng.triangular(0, 72, 12)))
    latest = _birthday(REFERENCE_DATE, -age)
    dob = _random_day(rng, latest - timedelta(days=364), latest)
    if _birthday(dob, MIN_AGE) > REFERENCE_DATE - timedelta(days=30):
        dob = dob - timedelta(days=60)  # keep a window to issue the first card before the date
    return dob


def _issue_date(rng: random.Random, dob: date) -> date:
    """A card valid on REFERENCE_DATE: issued after the last change age (or the 14th birthday)
    that has passed, and not before chip cards existed."""
    start = max(CHIP_CARDS_SINCE, _birthday(dob, MIN_AGE) + timedelta(days=1))
    for age in CARD_CHANGE_AGES:
        change = _birthday(dob, age)
        if change <= REFERENCE_DATE:
            start = max(start, change)
    return _random_day(rng, start, REFERENCE_DATE)


def _name(rng: random.Random, sex: str, province: Province) -> tuple[str, str]:
    family = rng.choices([n for n, _ in FAMILY_NAMES], [w for _, w in FAMILY_NAMES])[0]
    if province.south and family in SOUTHERN_VARIANT and rng.random() < 0.7:
        family = SOUTHERN_VARIANT[family]
    # "Văn" and "Thị" are by far the most common middle names, more so in older generations.
    if rng.random() < 0.4:
        parts = ["Văn" if sex == "M" else "Thị"]
    else:
        parts = [rng.choice(MIDDLE_NAMES[sex])]
    given = rng.choice(GIVEN_NAMES[sex])
    if rng.random() < 0.3:
        extra = rng.choice(EXTRA_MIDDLE[sex])
        if extra not in (parts[0], given):
            parts.append(extra)
    return _nfc(family), _nfc(" ".join(parts + [given]))


def _residence(rng: random.Random, province: Province) -> str:
    district = rng.choice(province.districts)
    if rng.random() < 0.65:
        place = f"Số {rng.randint(1, 250)} {rng.choice(STREETS)}"
        if rng.random() < 0.3:
            place = f"Số {rng.randint(1, 80)} ngõ {rng.randint(1, 200)} {rng.choice(STREETS)}"
        return _nfc(f"{place}, {district}, {province.name}")
    return _nfc(f"{rng.choice(HAMLETS)}, {rng.choice(COMMUNES)}, {district}, {province.name}")


def _one(rng: random.Random, taken: set[str], taken_old: set[str]) -> Citizen:
    weights = [p.weight for p in PROVINCES]
    birth_province = rng.choices(PROVINCES, weights)[0]
    home_province = birth_province if rng.random() < 0.7 else rng.choices(PROVINCES, weights)[0]
    sex = rng.choice("MF")
    dob = _dob(rng)
    family, given = _name(rng, sex, birth_province)
    prefix = birth_province.code + century_sex_digit(dob.year, sex) + f"{dob.year % 100:02d}"
    while (national_id := prefix + f"{rng.randint(0, 999_999):06d}") in taken:
        pass
    taken.add(national_id)
    issued = _issue_date(rng, dob)
    old_id = ""
    if dob.year < 2000 and rng.random() < OLD_ID_RATE:
        while (old_id := f"{rng.randint(10_000_000, 399_999_999):09d}") in taken_old:
            pass
        taken_old.add(old_id)
    status = "alive"
    roll = rng.random()
    if roll < DECEASED_RATE:
        status = "deceased"
    elif roll < DECEASED_RATE + REVOKED_RATE:
        status = "card_revoked"
    return Citizen(
        national_id=national_id,
        full_name=f"{family} {given}",
        family_name=family,
        given_name=given,
        date_of_birth=dob,
        sex=sex,
        residence=_residence(rng, home_province),
        province_code=birth_province.code,
        hometown=_nfc(f"{rng.choice(birth_province.districts)}, {birth_province.name}"),
        card_issue_date=issued,
        card_expiry_date=card_expiry(dob, issued),
        old_id=old_id,
        status=status,
        portrait_file=None,
    )


def synthetic_citizens(count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[Citizen]:
    """`count` citizens, deterministic in (`count`, `seed`) and prefix-stable; #0 is the demo
    citizen. Portraits come from the faces-dev manifest when `EKYC_TEST_DATA` has one."""
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)
    taken = {DEMO_CITIZEN.national_id}
    taken_old: set[str] = set()
    people = [DEMO_CITIZEN][:count]
    while len(people) < count:
        people.append(_one(rng, taken, taken_old))
    firsts = _identity_first_images(str(faces_dir() or ""))
    return [replace(c, portrait_file=firsts[i]) if i < len(firsts) else c
            for i, c in enumerate(people)]


# --- portraits ------------------------------------------------------------------------------
def faces_dir() -> Path | None:
    """The faces-dev folder (`$EKYC_TEST_DATA/faces-dev`, default /work/shared/data) or None."""
    root = os.environ.get("EKYC_TEST_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    folder = base / "faces-dev"
    return folder if (folder / "manifest.json").is_file() else None


@lru_cache(maxsize=4)
def _manifest(folder: str) -> tuple[tuple[str, str], ...]:
    """(identity, file) rows of the manifest, in manifest order; empty without the data."""
    if not folder:
        return ()
    rows = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    return tuple((r["identity"], r["file"]) for r in rows)


@lru_cache(maxsize=4)
def _identity_first_images(folder: str) -> tuple[str, ...]:
    firsts: dict[str, str] = {}
    for identity, file in _manifest(folder):
        firsts.setdefault(identity, file)
    return tuple(firsts.values())


def portrait_identity(citizen: Citizen) -> str | None:
    """The faces-dev identity whose images show this citizen, or None (no portrait)."""
    if not citizen.portrait_file:
        return None
    return citizen.portrait_file.split("/", 1)[0]


def identity_images(identity: str) -> list[str]:
    """Every faces-dev image of `identity` (relative paths, manifest order; the first one is the
    register portrait, the others are for cards and selfies). Empty without the data folder."""
    folder = str(faces_dir() or "")
    return [file for ident, file in _manifest(folder) if ident == identity]


def portrait_path(citizen: Citizen) -> Path | None:
    """Absolute path of the citizen's register portrait, or None."""
    folder = faces_dir()
    if folder is None or not citizen.portrait_file:
        return None
    path = folder / citizen.portrait_file
    return path if path.is_file() else None
