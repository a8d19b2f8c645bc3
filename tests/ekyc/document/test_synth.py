"""The synthetic card generator: what it draws is what the truth says, forgeries are forged."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from PIL import Image

from ekyc.document import idnumber, synth
from ekyc.document.mrz import parse_mrz
from ekyc.document.qr_payload import parse_cccd_qr
from register.seed import (
    faces_dir,
    identity_images,
    portrait_identity,
    portrait_path,
    synthetic_citizens,
)

CITIZENS = synthetic_citizens(60)


def _citizen(i: int = 1):
    return CITIZENS[i]


def _image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_genuine_card_is_two_jpeg_photos_whose_codes_match_the_citizen():
    citizen = _citizen()
    front, back, truth = synth.make_card(citizen, seed=3)
    assert _image(front).format == "JPEG" and _image(back).format == "JPEG"
    assert _image(front).size == (1280, 960)
    assert truth["genuine"] and truth["forgery"] is None
    assert truth["national_id"] == citizen.national_id
    qr = parse_cccd_qr(truth["qr_payload"])
    assert (qr.national_id, qr.full_name, qr.birth, qr.sex) == (
        citizen.national_id, citizen.full_name, citizen.date_of_birth, citizen.sex)
    mrz = parse_mrz(truth["mrz"], today=citizen.card_issue_date)
    assert mrz.valid, mrz.errors
    assert mrz.fields["national_id"] == citizen.national_id


def test_same_seed_same_card_other_seed_other_photo():
    citizen = _citizen(2)
    a = synth.make_card(citizen, variation="phone", seed=11)
    b = synth.make_card(citizen, variation="phone", seed=11)
    c = synth.make_card(citizen, variation="phone", seed=12)
    assert a == b
    assert a[0] != c[0]


@pytest.mark.parametrize("variation", ["rot90", "rot180", "rot270"])
def test_whole_image_turns_change_the_photo_shape(variation):
    front, _, truth = synth.make_card(_citizen(), variation=variation, seed=5)
    expected = (1280, 960) if variation == "rot180" else (960, 1280)
    assert _image(front).size == expected
    assert truth["variation"] == variation


def test_exif_rotated_photo_carries_the_orientation_tag():
    front, _, _ = synth.make_card(_citizen(), variation="exif_rotated", seed=5)
    img = _image(front)
    assert img.getexif().get(0x0112) == 6
    assert img.size == (960, 1280)  # the sensor's pixels; EXIF says how to turn them


def test_unknown_variation_or_forgery_is_refused():
    with pytest.raises(ValueError):
        synth.make_card(_citizen(), variation="sepia", seed=1)
    with pytest.raises(ValueError):
        synth.make_card(_citizen(), forgery="hologram", seed=1)


def test_qr_and_mrz_disagree_on_the_number():
    citizen = _citizen(3)
    _, _, truth = synth.make_card(citizen, forgery="qr_mrz_number", seed=7)
    qr = parse_cccd_qr(truth["qr_payload"])
    mrz = parse_mrz(truth["mrz"], today=citizen.card_issue_date)
    assert mrz.valid  # each code is well formed on its own ...
    assert qr.national_id != mrz.fields["national_id"]  # ... they contradict each other
    assert not idnumber.check_against(idnumber.parse_national_id(qr.national_id), qr.birth, qr.sex)


def test_qr_and_mrz_disagree_on_name_or_birth_date():
    citizen = _citizen(4)
    _, _, named = synth.make_card(citizen, forgery="qr_mrz_name", seed=7)
    _, _, born = synth.make_card(citizen, forgery="qr_mrz_dob", seed=7)
    assert parse_cccd_qr(named["qr_payload"]).full_name != citizen.full_name
    assert parse_cccd_qr(born["qr_payload"]).birth != citizen.date_of_birth
    assert parse_cccd_qr(born["qr_payload"]).birth.year == citizen.date_of_birth.year


def test_wrong_check_digit_fails_exactly_that_check():
    citizen = _citizen(5)
    _, _, truth = synth.make_card(citizen, forgery="mrz_check_digit", seed=8)
    mrz = parse_mrz(truth["mrz"], today=citizen.card_issue_date)
    failed = [name for name, ok in mrz.checks.items() if not ok]
    assert truth["forgery_detail"]["check"] in failed


def test_number_inconsistent_with_birth_date_is_the_same_on_every_source():
    citizen = _citizen(6)
    _, _, truth = synth.make_card(citizen, forgery="id_dob_inconsistent", seed=9)
    number = truth["national_id"]
    assert number != citizen.national_id
    assert parse_cccd_qr(truth["qr_payload"]).national_id == number
    nid = idnumber.parse_national_id(number)
    assert idnumber.check_against(nid, citizen.date_of_birth, citizen.sex)


def test_printed_field_edit_changes_only_the_printed_text():
    citizen = _citizen(7)
    _, _, truth = synth.make_card(citizen, forgery="printed_field_edited", seed=10)
    field = truth["forgery_detail"]["field"]
    qr = parse_cccd_qr(truth["qr_payload"])
    assert qr.national_id == citizen.national_id and qr.full_name == citizen.full_name
    printed = {"national_id": truth["national_id"], "full_name": truth["full_name"],
               "birth": truth["date_of_birth"]}
    original = {"national_id": citizen.national_id, "full_name": citizen.full_name,
                "birth": citizen.date_of_birth.isoformat()}
    if field == "national_id":  # the truth's number is the MRZ's: the edit is printed only
        assert parse_mrz(truth["mrz"], today=citizen.card_issue_date).valid
    else:
        assert printed[field] != original[field]


@pytest.mark.skipif(faces_dir() is None, reason="faces-dev test data not available")
def test_portraits_use_a_non_register_image_and_a_swap_uses_someone_else():
    citizen = next(c for c in CITIZENS
                   if c.portrait_file and len(identity_images(portrait_identity(c))) > 1)
    other = next(c for c in CITIZENS if c.portrait_file and c is not citizen)
    _, _, truth = synth.make_card(citizen, seed=1)
    assert truth["portrait_identity"] == portrait_identity(citizen)
    assert truth["portrait"] != citizen.portrait_file  # not the register's own image
    assert truth["portrait_is_register_image"] is False
    _, _, swapped = synth.make_card(citizen, forgery="swapped_portrait", swap_with=other, seed=1)
    assert swapped["portrait_identity"] == portrait_identity(other)
    assert not swapped["genuine"]
    # The register holds the citizen's portrait: the document stage can compare, not defer.
    assert swapped["needs_stage"] is None
    assert swapped["expected_codes"] == ["portrait_register_mismatch", "portrait_no_face"]
    with pytest.raises(ValueError, match="another person"):
        synth.make_card(citizen, forgery="swapped_portrait",
                        swap_with=replace(other, national_id="001199999999",
                                          portrait_file=citizen.portrait_file), seed=1)


@pytest.mark.skipif(faces_dir() is None, reason="faces-dev test data not available")
def test_generated_set_carries_each_citizens_register_portrait(tmp_path):
    rows = synth.generate_set(tmp_path, n=16, forgeries=14, seed=5, variations=["none"],
                              gate_cases=0)
    by_id = {c.national_id: c for c in synthetic_citizens(400)}
    swaps = [r for r in rows if r["forgery"] == "swapped_portrait"]
    assert len(swaps) == 2
    for row in rows:
        citizen = by_id[row["citizen_national_id"]]
        assert citizen.portrait_file  # every card is checkable against the register
        if row["forgery"] == "id_dob_inconsistent":  # a number the register does not know
            assert "register_portrait" not in row
            continue
        assert row["register_portrait"] == f"register/{citizen.national_id}.jpg"
        stored = (tmp_path / row["register_portrait"]).read_bytes()
        assert stored == portrait_path(citizen).read_bytes()  # the TRUE citizen's portrait
        if row["forgery"] == "swapped_portrait":
            assert row["portrait_identity"] != portrait_identity(citizen)
            assert row["portrait_group"] == row["citizen_group"] == row["swap_group"]
            assert row["needs_stage"] is None
        else:
            assert row["portrait_identity"] == portrait_identity(citizen)
    # The first swap goes to an East/Southeast Asian citizen: the hard case for the model.
    assert swaps[0]["citizen_group"] == "east_southeast_asian"
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["cards"] == rows


def test_generate_set_writes_images_and_a_manifest(tmp_path):
    rows = synth.generate_set(tmp_path, n=5, forgeries=2, seed=4,
                              variations=["none", "jpeg"])
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["cards"] == rows and manifest["n"] == 5
    assert sum(not r["genuine"] for r in rows) == 2
    assert [r["variation"] for r in rows] == ["none", "jpeg", "none", "jpeg", "none"]
    for row in rows:
        assert (tmp_path / row["front"]).stat().st_size > 10_000
        assert (tmp_path / row["back"]).is_file()
        assert len(row["national_id"]) == 12
    with pytest.raises(ValueError):
        synth.generate_set(tmp_path, n=2, forgeries=3, seed=1)


def test_command_line_entry_point(tmp_path, capsys):
    assert synth.main([str(tmp_path), "--n", "2", "--forgeries", "1", "--seed", "2"]) == 0
    assert len(json.loads((tmp_path / "manifest.json").read_text())["cards"]) == 2
    assert "wrote 2 cards" in capsys.readouterr().err
