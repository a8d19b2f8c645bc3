"""The selfie against the card (and the register) with real faces from faces-dev: the card
holder is accepted or reviewed, someone else is never accepted, and a capture that cannot be
used says why."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from ekyc import cli
from ekyc.face import ModelInfo, Thresholds, default_matcher, load_thresholds
from ekyc.face.compare import REASONS, compare_selfie, fuse
from ekyc.face.frames import analyse_burst
from tests.ekyc.document import ROOT
from tests.ekyc.face.test_matcher import FACES, needs_faces

pytestmark = needs_faces


@pytest.fixture(scope="module")
def matcher():
    return default_matcher()


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _burst(name: str, matcher, n: int = 3, brightness: float = 1.0):
    """n frames of one photo, as a live capture would vary a little (light, JPEG)."""
    img = Image.open(FACES / name).convert("RGB")
    frames = [_jpeg(ImageEnhance.Brightness(img).enhance(brightness * (1 + 0.04 * i)), 85 + i)
              for i in range(n)]
    return analyse_burst(frames, matcher)


def _card(name: str) -> bytes:
    return (FACES / name).read_bytes()


# (selfie, card of the same person, someone else's card)
CASES = [("Wang_Yi/1.jpg", "Wang_Yi/2.jpg", "Hideki_Matsui/1.jpg"),
         ("Yao_Ming/3.jpg", "Yao_Ming/2.jpg", "Zhu_Rongji/1.jpg"),
         ("Antonio_Palocci/2.jpg", "Antonio_Palocci/1.jpg", "Leslie_Caldwell/1.jpg")]


@pytest.mark.parametrize("selfie, card, other", CASES)
def test_card_holder_accepted_or_reviewed_someone_else_never_accepted(matcher, selfie, card,
                                                                      other):
    burst = _burst(selfie, matcher)
    mine = compare_selfie(burst, _card(card), matcher=matcher)
    assert mine.outcome in ("accept", "review"), mine
    assert mine.frames_used == 3 and mine.quality == [[], [], []]
    assert mine.reason_code in (None, "face_uncertain")
    theirs = compare_selfie(burst, _card(other), matcher=matcher)
    assert theirs.outcome in ("review", "reject")
    assert theirs.distance_card > mine.distance_card
    assert theirs.reason_code in ("face_uncertain", "face_mismatch")
    record = json.dumps(theirs.to_dict())  # JSON-safe, and no vector in it
    assert len(record) < 2000 and theirs.model == str(matcher.model)


def test_the_same_photo_is_accepted_and_the_register_is_compared(matcher):
    burst = _burst("Wang_Yi/1.jpg", matcher)
    same = compare_selfie(burst, _card("Wang_Yi/1.jpg"), _card("Wang_Yi/1.jpg"), matcher=matcher)
    assert (same.outcome, same.reason_code) == ("accept", None)
    assert same.distance_card < same.strict and same.distance_register is not None
    # a card whose portrait is the holder's, but the register holds someone else: review
    odd = compare_selfie(burst, _card("Wang_Yi/1.jpg"), _card("Antonio_Palocci/1.jpg"),
                         matcher=matcher)
    assert (odd.outcome, odd.reason_code) == ("review", "face_mismatch")
    assert odd.distance_register >= odd.loose


def test_a_clear_other_person_is_rejected(matcher):
    limits = load_thresholds(matcher.model)
    burst = _burst("Wang_Yi/1.jpg", matcher)
    # with the loose threshold just above this pair's distance, it must reject
    probe = compare_selfie(burst, _card("Antonio_Palocci/1.jpg"), matcher=matcher)
    tight = Thresholds(limits.model, strict=limits.strict,
                       loose=max(limits.strict, probe.distance_card - 0.01),
                       target_fmr=limits.target_fmr)
    result = compare_selfie(burst, _card("Antonio_Palocci/1.jpg"), matcher=matcher,
                            thresholds=tight)
    assert (result.outcome, result.reason_code) == ("reject", "face_mismatch")


def test_unusable_captures_say_why(matcher):
    plain = _jpeg(Image.new("RGB", (320, 240), (90, 120, 150)))
    empty = analyse_burst([plain, plain], matcher)
    result = compare_selfie(empty, _card("Wang_Yi/1.jpg"), matcher=matcher)
    assert (result.outcome, result.reason_code) == ("unusable", "selfie_no_face")
    assert result.quality == [["no_face"], ["no_face"]]
    dark = _burst("Wang_Yi/2.jpg", matcher, n=2, brightness=0.22)
    result = compare_selfie(dark, _card("Wang_Yi/1.jpg"), matcher=matcher)
    assert (result.outcome, result.reason_code) == ("unusable", "selfie_quality")
    assert "too_dark" in result.detail["problems"]


def test_a_card_portrait_without_a_face_goes_to_review(matcher):
    burst = _burst("Wang_Yi/2.jpg", matcher)
    for card in (None, _jpeg(Image.new("RGB", (220, 300), (200, 200, 200))), b"not an image"):
        result = compare_selfie(burst, card, matcher=matcher)
        assert (result.outcome, result.reason_code) == ("review", "portrait_no_face")


def test_a_given_card_encoding_is_used(matcher):
    burst = _burst("Wang_Yi/2.jpg", matcher)
    card = matcher.encode(_card("Wang_Yi/1.jpg"))
    given = compare_selfie(burst, None, matcher=matcher, card_encoding=card,
                           register_encoding=card)
    encoded = compare_selfie(burst, _card("Wang_Yi/1.jpg"), _card("Wang_Yi/1.jpg"),
                             matcher=matcher)
    assert given.distance_card == encoded.distance_card
    assert given.distance_register == encoded.distance_register == given.distance_card


def test_fusion_keeps_the_embedding_length():
    model = ModelInfo("m", "1")
    from ekyc.face import Encoding

    rng = np.random.default_rng(3)
    vectors = [v / np.linalg.norm(v) for v in rng.normal(size=(4, 128))]
    fused = fuse([Encoding(v, (0, 0, 1, 1), 1, model) for v in vectors])
    assert np.linalg.norm(fused.vector) == pytest.approx(1.0)
    assert set(REASONS) >= {"selfie_no_face", "face_mismatch"}


# --- `ekyc compare` ---------------------------------------------------------------------------
def test_compare_command(capsys):
    code = cli.main(["compare", str(FACES / "Wang_Yi/1.jpg"), str(FACES / "Wang_Yi/1.jpg"),
                     "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["distance"] == 0.0 and data["outcome"] == "accept"
    assert data["model"] == default_matcher().model.name and data["strict"] < data["loose"]
    code = cli.main(["compare", str(FACES / "Wang_Yi/1.jpg"),
                     str(FACES / "Antonio_Palocci/1.jpg"), "--json"])
    assert code == 0 and json.loads(capsys.readouterr()[0])["outcome"] in ("review", "reject")


def test_compare_command_refuses_unreadable_and_faceless_images(tmp_path, capsys):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (200, 200), (10, 200, 10)).save(plain)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"hello")
    face = str(FACES / "Wang_Yi/1.jpg")
    for other, words in ((str(tmp_path / "missing.jpg"), "cannot read"),
                         (str(garbage), "not a usable image"), (str(plain), "no face")):
        assert cli.main(["compare", face, other, "--json"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and words in err


def test_compare_runs_as_the_console_script():
    done = subprocess.run([sys.executable, "-m", "ekyc.cli", "compare",
                           str(FACES / "Wang_Yi/1.jpg"), str(FACES / "Wang_Yi/2.jpg"), "--json"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] in ("accept", "review")
