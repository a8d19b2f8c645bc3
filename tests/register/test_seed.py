"""The synthetic population generator (register.seed): the full 10,000, without a database."""

from __future__ import annotations

import collections
import unicodedata
from datetime import date

import pytest

from register import seed as synthetic
from register.provinces import BY_CODE, PROVINCES

VIETNAMESE_LETTERS = set("ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ")


@pytest.fixture(scope="module")
def population():
    return synthetic.synthetic_citizens()


def test_demo_citizen_is_first(population):
    demo = population[0]
    assert demo.national_id == "001199000001"
    assert demo.full_name == "Nguyễn Thị Minh Anh"
    assert (demo.sex, demo.date_of_birth, demo.status) == ("F", date(1999, 3, 15), "alive")
    assert demo.residence == "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội"
    assert demo.card_expiry_date is None or demo.card_expiry_date > date.today()


def test_ten_thousand_unique_numbers_that_follow_the_structure(population):
    assert len(population) == 10_000
    assert len({c.national_id for c in population}) == 10_000
    for c in population:
        nid = c.national_id
        assert len(nid) == 12 and nid.isdigit(), nid
        assert nid[:3] == c.province_code and nid[:3] in BY_CODE
        century, female = divmod(int(nid[3]), 2)
        assert 1900 + 100 * century <= c.date_of_birth.year < 2000 + 100 * century
        assert female == (c.sex == "F")
        assert nid[4:6] == f"{c.date_of_birth.year % 100:02d}"


def test_cards_follow_the_issue_and_expiry_rules(population):
    ref = synthetic.REFERENCE_DATE
    for c in population:
        dob = c.date_of_birth
        assert synthetic._birthday(dob, 14) <= ref, "everyone holds a card"
        assert c.card_issue_date > synthetic._birthday(dob, 14)
        assert synthetic.CHIP_CARDS_SINCE <= c.card_issue_date <= ref
        expiry = c.card_expiry_date
        if expiry is None:
            assert c.card_issue_date > synthetic._birthday(dob, 58)
        else:
            assert expiry in {synthetic._birthday(dob, age) for age in (25, 40, 60)}
            assert expiry > ref, "the register holds the card in use"
    no_expiry = sum(c.card_expiry_date is None for c in population)
    assert 100 < no_expiry < 5000


def test_statuses_old_ids_and_sexes_in_sensible_proportions(population):
    statuses = collections.Counter(c.status for c in population)
    assert set(statuses) == {"alive", "deceased", "card_revoked"}
    assert 50 <= statuses["deceased"] <= 200 and 50 <= statuses["card_revoked"] <= 200
    old = [c.old_id for c in population if c.old_id]
    assert len(old) == len(set(old)) > 1000
    assert all(len(o) == 9 and o.isdigit() for o in old)
    sexes = collections.Counter(c.sex for c in population)
    assert 4500 < sexes["M"] < 5500


def test_names_are_vietnamese_with_diacritics(population):
    families = collections.Counter(c.family_name for c in population)
    assert families.most_common(1)[0][0] == "Nguyễn"
    assert {"Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô"} <= set(families)
    for c in population:
        assert c.full_name == f"{c.family_name} {c.given_name}"
        assert unicodedata.is_normalized("NFC", c.full_name)
        assert unicodedata.is_normalized("NFC", c.residence)
    with_marks = sum(bool(set(c.full_name.lower()) & VIETNAMESE_LETTERS) for c in population)
    assert with_marks > 9000
    females = [c for c in population if c.sex == "F"]
    assert sum(" Thị " in f" {c.given_name} " for c in females) > len(females) / 5


def test_residences_cover_every_province(population):
    names = {p.name for p in PROVINCES}
    seen = collections.Counter(c.residence.rsplit(", ", 1)[1] for c in population)
    assert set(seen) == names
    assert {c.province_code for c in population} == set(BY_CODE)


def test_deterministic_and_prefix_stable(population):
    assert synthetic.synthetic_citizens(300) == population[:300]
    assert synthetic.synthetic_citizens(50, seed=7) == synthetic.synthetic_citizens(50, seed=7)
    assert synthetic.synthetic_citizens(50, seed=7)[1:] != population[1:50]


def test_works_without_the_face_data(monkeypatch, tmp_path, population):
    monkeypatch.setenv("EKYC_TEST_DATA", str(tmp_path))
    bare = synthetic.synthetic_citizens(400)
    assert all(c.portrait_file is None for c in bare)
    assert [c.national_id for c in bare] == [c.national_id for c in population[:400]]
    assert synthetic.portrait_identity(bare[1]) is None


def test_portraits_from_the_manifest(population):
    if synthetic.faces_dir() is None:
        pytest.skip("faces-dev data absent (set EKYC_TEST_DATA)")
    with_portrait = [c for c in population if c.portrait_file]
    identities = [synthetic.portrait_identity(c) for c in with_portrait]
    assert len(identities) == len(set(identities)) > 200, "one identity per citizen"
    assert with_portrait == population[:len(with_portrait)]
    for c in with_portrait:
        images = synthetic.identity_images(synthetic.portrait_identity(c))
        assert images[0] == c.portrait_file
        assert synthetic.portrait_path(c).is_file()
    multi = [c for c in with_portrait
             if len(synthetic.identity_images(synthetic.portrait_identity(c))) >= 2]
    assert len(multi) > 150, "most portrait citizens have other images for cards and selfies"


def test_card_expiry_rule_examples():
    dob = date(1999, 3, 15)
    assert synthetic.card_expiry(dob, date(2021, 7, 1)) == date(2024, 3, 15)
    assert synthetic.card_expiry(dob, date(2022, 7, 1)) == date(2039, 3, 15)  # < 2 years to 25
    assert synthetic.card_expiry(date(1964, 2, 29), date(2021, 1, 5)) == date(2024, 2, 29)
    assert synthetic._birthday(date(1964, 2, 29), 25) == date(1989, 2, 28)
    assert synthetic.card_expiry(date(1962, 5, 1), date(2021, 1, 5)) is None


def test_century_sex_digit():
    assert synthetic.century_sex_digit(1984, "M") == "0"
    assert synthetic.century_sex_digit(1999, "F") == "1"
    assert synthetic.century_sex_digit(2003, "M") == "2"
    assert synthetic.century_sex_digit(2010, "F") == "3"
