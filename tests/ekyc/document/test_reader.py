"""The document reader on generated card photos, with the real Tesseract, OpenCV and zxing-cpp.

What a user would notice: the exact ID number from a genuine card (also upside down or turned
by EXIF), a reject or review finding with the right code for each forgery, the capture-quality
gate, and a clean error (never a crash) for files that are not usable images.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import zlib
from dataclasses import replace
from datetime import date

import cv2
import numpy as np
import pytest
from PIL import Image

from ekyc.document import ocr, synth
from ekyc.document.imaging import ImageError, decode_image
from ekyc.document.reader import cli_read_document, read_document
from register.seed import REFERENCE_DATE, faces_dir, portrait_path, synthetic_citizens

pytestmark = pytest.mark.skipif(ocr.tesseract_version() == "unavailable",
                                reason="Tesseract is not installed")

CITIZENS = [c for c in synthetic_citizens(80) if c.status == "alive"]
TODAY = REFERENCE_DATE  # the synthetic population's cards are valid on this date


def _read(card, **kwargs):
    front, back, truth = card
    return read_document(front, back, today=TODAY, **kwargs), truth


def _codes(reading, severities=("reject", "review")) -> set[str]:
    return {f.code for f in reading.findings if f.severity in severities}


@pytest.fixture(scope="module")
def genuine():
    return synth.make_card(CITIZENS[1], variation="none", seed=21)


def test_genuine_card_gives_the_exact_number_and_no_objection(genuine):
    reading, truth = _read(genuine)
    assert reading.national_id == truth["national_id"]
    assert not _codes(reading), reading.to_dict()["findings"]
    assert reading.qr["payload"]["national_id"] == truth["national_id"]
    assert reading.mrz["valid"] and reading.mrz["lines"] == truth["mrz"]
    assert reading.printed["national_id"] == truth["national_id"]
    assert reading.printed["date_of_birth"] == truth["date_of_birth"]


def test_reading_is_json_safe_and_carries_versions_timings_and_the_portrait(genuine):
    reading, _ = _read(genuine)
    data = json.loads(json.dumps(reading.to_dict()))
    assert set(data["versions"]) >= {"reader", "tesseract", "opencv", "zxing"}
    assert data["timings_ms"]["mrz"] >= 0
    assert data["quality"]["front"]["card_in_frame"] is True
    portrait = Image.open(io.BytesIO(reading.portrait_jpeg))
    assert portrait.format == "JPEG"
    assert list(portrait.size) == data["portrait"]["box"][2:]


@pytest.mark.parametrize("variation", ["rot180", "exif_rotated", "rotation_large"])
def test_turned_card_is_still_read(variation):
    reading, truth = _read(synth.make_card(CITIZENS[2], variation=variation, seed=5))
    assert reading.national_id == truth["national_id"]
    assert reading.mrz["valid"]


FORGERY_SEEDS = {"qr_mrz_number": 31, "qr_mrz_name": 32, "qr_mrz_dob": 33,
                 "mrz_check_digit": 34, "id_dob_inconsistent": 35, "printed_field_edited": 36}


@pytest.fixture(scope="module")
def forged():
    """One reading per forgery type (clean photos: what is tested is the detection)."""
    out = {}
    for forgery, seed in FORGERY_SEEDS.items():
        card = synth.make_card(CITIZENS[3 + seed % 7], variation="none", forgery=forgery,
                               seed=seed, name_pool=["Hùng", "Phương", "Khoa"])
        out[forgery] = _read(card)[0]
    return out


@pytest.mark.parametrize("forgery", sorted(FORGERY_SEEDS))
def test_each_forgery_is_rejected_or_sent_to_review_with_its_code(forged, forgery):
    reading = forged[forgery]
    expected = set(synth.EXPECTED_CODES[forgery])
    assert expected & _codes(reading), (forgery, reading.to_dict()["findings"])


@pytest.mark.parametrize("forgery", ["qr_mrz_number", "mrz_check_digit", "id_dob_inconsistent"])
def test_structural_forgeries_are_rejected_not_just_reviewed(forged, forgery):
    assert forged[forgery].worst() == "reject", forged[forgery].to_dict()["findings"]


needs_faces = pytest.mark.skipif(faces_dir() is None,
                                 reason="faces-dev test data not found (set EKYC_TEST_DATA)")
PORTRAIT_CODES = {"portrait_register_mismatch", "portrait_no_face", "portrait_register_unusable"}


def _register(citizen) -> bytes:
    return portrait_path(citizen).read_bytes()


@needs_faces
def test_genuine_card_matches_the_register_portrait():
    citizen = CITIZENS[8]
    reading, truth = _read(synth.make_card(citizen, variation="none", seed=3),
                           register_portrait=_register(citizen))
    assert reading.national_id == truth["national_id"]
    assert not _codes(reading), reading.to_dict()["findings"]
    check = reading.to_dict()["portrait_check"]
    assert check["checked"] and check["outcome"] == "match"
    assert check["distance"] < check["threshold"]
    assert check["model"] == "dlib-resnet-v1" and check["model_version"]
    assert reading.portrait_face == check["card_face"] and len(reading.portrait_face) == 4
    assert reading.timings_ms["portrait_check"] >= 0


@needs_faces
@pytest.mark.parametrize("index, other, seed", [(5, 6, 44), (30, 33, 47)])
def test_swapped_portrait_is_sent_to_review(index, other, seed):
    """Another person's face on an otherwise consistent card: only the register's portrait
    shows it. The first swap is between two East/Southeast Asian faces, the hard case."""
    citizen = CITIZENS[index]
    card = synth.make_card(citizen, variation="none", forgery="swapped_portrait",
                           swap_with=CITIZENS[other], seed=seed)
    reading, truth = _read(card, register_portrait=_register(citizen))
    assert truth["portrait_group"] == truth["citizen_group"]
    assert reading.national_id == truth["national_id"]  # the card itself reads as consistent
    assert _codes(reading) == {"portrait_register_mismatch"}, reading.to_dict()["findings"]
    assert reading.worst() == "review"
    check = reading.portrait_check
    assert check["outcome"] == "mismatch" and check["distance"] >= check["threshold"]
    unchecked, _ = _read(card)  # without the register's portrait nobody can tell
    assert not _codes(unchecked) and unchecked.portrait_check == {
        "checked": False, "why": "no register portrait given"}


@needs_faces
def test_portraits_without_a_face_cannot_be_compared_and_are_sent_to_review():
    citizen = CITIZENS[8]
    faceless = replace(citizen, portrait_file=None)  # the generator draws a silhouette
    reading, _ = _read(synth.make_card(faceless, variation="none", seed=3),
                       register_portrait=_register(citizen))
    assert _codes(reading) == {"portrait_no_face"}, reading.to_dict()["findings"]
    assert reading.portrait_check["outcome"] == "no_face"
    assert reading.portrait_check["distance"] is None
    # A register portrait in which no face is found (one of faces-dev's few such photos).
    unusable = (faces_dir() / "Colin_Montgomerie/4.jpg").read_bytes()
    reading, _ = _read(synth.make_card(citizen, variation="none", seed=3),
                       register_portrait=unusable)
    assert _codes(reading) == {"portrait_register_unusable"}
    assert reading.portrait_check["outcome"] == "register_no_face"


def test_card_partly_out_of_frame_is_sent_back_by_the_quality_gate():
    reading, _ = _read(synth.make_card(CITIZENS[7], variation="out_of_frame", seed=3))
    assert "quality_card_not_in_frame" in _codes(reading)


def _reencode(jpeg: bytes, change) -> bytes:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    ok, out = cv2.imencode(".jpg", change(img), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return out.tobytes()


def test_badly_blurred_photo_is_flagged(genuine):
    front, back, _ = genuine
    blurred = _reencode(front, lambda img: cv2.GaussianBlur(img, (0, 0), 5))
    reading = read_document(blurred, back, today=TODAY)
    assert "quality_blur" in _codes(reading)


def test_glare_over_the_card_is_flagged(genuine):
    front, back, _ = genuine

    def flash(img):
        h, w = img.shape[:2]
        cv2.ellipse(img, (w // 2, h // 2), (w // 5, h // 5), 0, 0, 360, (255, 255, 255), -1)
        return img

    reading = read_document(_reencode(front, flash), back, today=TODAY)
    assert "quality_glare" in _codes(reading)


def test_front_only_reads_the_qr_and_printed_number(genuine):
    front, _, truth = genuine
    reading = read_document(front, None, today=TODAY)
    assert reading.mrz is None
    assert reading.national_id == truth["national_id"]  # QR and printed number agree


def test_a_photo_without_a_card_reads_nothing_and_says_so():
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)
    _, jpeg = cv2.imencode(".jpg", noise)
    reading = read_document(jpeg.tobytes(), jpeg.tobytes(), today=TODAY)
    assert reading.national_id is None
    assert {"national_id_unconfirmed", "qr_not_found"} <= _codes(reading)


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.mark.parametrize("data, code", [
    (b"", "empty"),
    (b"%PDF-1.7 not an image at all", "not_an_image"),
    (b"GIF89a" + b"\x00" * 64, "not_an_image"),
    (_png_header(100_000, 100_000), "too_many_pixels"),
])
def test_unusable_files_raise_a_clean_error_with_a_code(data, code):
    with pytest.raises(ImageError) as err:
        read_document(data, None, today=TODAY)
    assert err.value.code == code


def test_truncated_jpeg_is_a_clean_error(genuine):
    front, _, _ = genuine
    with pytest.raises(ImageError) as err:
        decode_image(front[: len(front) // 2])
    assert err.value.code == "truncated"
    with pytest.raises(ImageError):
        read_document(front, front[:300], today=TODAY)


def _args(**kw):
    base = {"front": None, "back": None, "json": True, "portrait": None, "register_portrait": None,
            "today": date(2026, 11, 1)}
    base.update(kw)
    return argparse.Namespace(**base)


def test_command_line_prints_the_reading(genuine, tmp_path, capsys):
    front, back, truth = genuine
    (tmp_path / "f.jpg").write_bytes(front)
    (tmp_path / "b.jpg").write_bytes(back)
    portrait = tmp_path / "p.jpg"
    status = cli_read_document(_args(front=str(tmp_path / "f.jpg"), back=str(tmp_path / "b.jpg"),
                                     portrait=str(portrait)))
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["national_id"] == truth["national_id"]
    assert portrait.read_bytes()[:2] == b"\xff\xd8"


def test_command_line_reports_an_unusable_file(tmp_path, capsys):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not a photo")
    assert cli_read_document(_args(front=str(bad))) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "not_an_image"
    assert cli_read_document(_args(front=str(tmp_path / "missing.jpg"))) == 2


def test_without_a_qr_a_fully_valid_mrz_gives_the_number_but_never_overrules_a_qr():
    """A blurred photo: the QR is unreadable and the printed number misread, but the MRZ holds
    with all its check digits. The number is read from it (the missing QR still sends the case
    to an operator); a QR that disagrees with the MRZ is never overruled."""
    from datetime import date

    from ekyc.document.mrz import compose_vn_td1, parse_mrz
    from ekyc.document.qr_payload import parse_cccd_qr
    from ekyc.document.reader import _choose_id

    lines = compose_vn_td1(national_id="025301162864", birth=date(2001, 9, 20), sex="F",
                           expiry=date(2041, 9, 20), surname="LÊ", given="THỊ HOA")
    mrz = parse_mrz(lines, today=date(2026, 11, 1))
    assert mrz.valid
    assert _choose_id(None, mrz, {"national_id": "025301162884"}) == "025301162864"
    other = parse_cccd_qr("025301169999||Lê Thị Hoa|20092001|Nữ|Phú Thọ|01072021")
    assert _choose_id(other, mrz, {}) is None
    broken = parse_mrz([lines[0], lines[1][:-1] + ("0" if lines[1][-1] != "0" else "1"),
                        lines[2]], today=date(2026, 11, 1))
    assert not broken.valid and _choose_id(None, broken, {}) is None
