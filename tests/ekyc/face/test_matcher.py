"""The face matcher on real faces from faces-dev (`EKYC_TEST_DATA`): what a caller notices is
that the same person comes out closer than different people, that an image without a face
gives no encoding, that a phone photo turned by EXIF is read upright, and that the stored
thresholds belong to this model."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ekyc.face import (
    DlibMatcher,
    FaceImageError,
    ModelInfo,
    ThresholdsError,
    default_matcher,
    load_rgb,
    load_thresholds,
)
from ekyc.face import thresholds as th
from ekyc.face.calibrate import calibrate
from tests.ekyc.document import test_data_dir

FACES = test_data_dir() / "faces-dev"
needs_faces = pytest.mark.skipif(not (FACES / "manifest.json").is_file(),
                                 reason=f"faces-dev test data not found at {FACES} "
                                        "(set EKYC_TEST_DATA)")

# (person A, another photo of A, someone else): East/Southeast Asian faces (the hard group for
# this model) and others.
KNOWN = [("Wang_Yi/1.jpg", "Wang_Yi/2.jpg", "Hideki_Matsui/1.jpg"),
         ("Yao_Ming/1.jpg", "Yao_Ming/2.jpg", "Zhu_Rongji/1.jpg"),
         ("Antonio_Palocci/1.jpg", "Antonio_Palocci/2.jpg", "Leslie_Caldwell/1.jpg"),
         ("Ahmed_Chalabi/1.jpg", "Ahmed_Chalabi/2.jpg", "Tommy_Robredo/1.jpg")]


@pytest.fixture(scope="module")
def matcher():
    return default_matcher()


def _face(name: str) -> bytes:
    return (FACES / name).read_bytes()


@needs_faces
@pytest.mark.parametrize("person, same, other", KNOWN)
def test_the_same_person_is_closer_than_someone_else(matcher, person, same, other):
    a, b, c = (matcher.encode(_face(n)) for n in (person, same, other))
    assert a is not None and b is not None and c is not None
    assert a.faces == 1 and a.vector.shape == (128,)
    assert matcher.distance(a, b) < matcher.distance(a, c)
    limits = load_thresholds(matcher.model)
    assert matcher.distance(a, c) >= limits.strict  # someone else is never accepted here
    assert matcher.distance(a, a) == 0.0


@needs_faces
def test_no_face_gives_no_encoding(matcher):
    # One of the faces-dev photos in which dlib's HOG detector finds no face (thresholds.json
    # lists them), and a plain picture.
    assert matcher.encode(_face("Colin_Montgomerie/4.jpg")) is None
    plain = np.full((300, 300, 3), 180, np.uint8)
    plain[100:200, 100:200] = (40, 90, 160)
    assert matcher.encode(plain) is None


@needs_faces
def test_exif_rotation_is_applied(matcher):
    """A photo stored sideways with EXIF orientation 6 (as phones do): the library's own
    loader ignores the tag and finds no face; the matcher turns it upright first."""
    import face_recognition

    upright = Image.open(FACES / "Wang_Yi/1.jpg")
    tags = Image.Exif()
    tags[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buf = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=95,
                                                       exif=tags.tobytes())
    sideways = buf.getvalue()
    raw = face_recognition.load_image_file(io.BytesIO(sideways))
    assert face_recognition.face_locations(raw, 1) == []
    turned = matcher.encode(sideways)
    reference = matcher.encode(_face("Wang_Yi/1.jpg"))
    assert turned is not None and reference is not None
    assert matcher.distance(turned, reference) < 0.1  # the same photo, re-encoded as JPEG
    assert turned.box == pytest.approx(reference.box, abs=3)  # in upright coordinates
    assert load_rgb(sideways).shape == (250, 250, 3)


@needs_faces
def test_largest_face_or_exactly_one(matcher):
    big = Image.open(FACES / "Wang_Yi/1.jpg")
    small = Image.open(FACES / "Hideki_Matsui/1.jpg").resize((160, 160))
    canvas = Image.new("RGB", (420, 260), (128, 128, 128))
    canvas.paste(big, (0, 5))
    canvas.paste(small, (255, 50))
    both = np.asarray(canvas)
    found = matcher.encode(both)
    assert found is not None and found.faces == 2
    assert matcher.distance(found, matcher.encode(_face("Wang_Yi/1.jpg"))) < 0.1  # the big one
    assert matcher.encode(both, largest=False) is None


def test_unusable_images_raise_a_coded_error(matcher):
    for data, code in ((b"", "empty"), (b"GIF89a" + b"\0" * 64, "not_an_image"),
                       (b"\xff\xd8\xff\xe0" + b"\0" * 64, "not_an_image")):
        with pytest.raises(FaceImageError) as err:
            matcher.encode(data)
        assert err.value.code in (code, "truncated")


def test_thresholds_belong_to_the_model(matcher, tmp_path):
    limits = load_thresholds(matcher.model)
    assert limits.model == matcher.model
    assert 0.2 < limits.strict < 0.6  # calibrated, not the library's 0.6 default
    assert set(limits.groups) == {"all", "east_southeast_asian", "other"}
    asian = limits.groups["east_southeast_asian"]
    # too few impostor pairs to observe 1e-4: the lower of the lowest impostor distance and
    # the normal fit of the impostor tail
    assert asian["method"] in ("lowest_impostor", "normal_tail")
    assert asian["impostor_pairs"] < 10_000 and "cannot be observed" in asian["note"]
    assert asian["strict"] <= asian["lowest_impostor_distance"]
    for group in limits.groups.values():
        assert group["at_used_strict"]["threshold"] == limits.strict
        assert group["at_used_strict"]["impostor_accepted"] <= max(
            1, group["impostor_pairs"] * limits.target_fmr)
        assert 0 < group["at_used_strict"]["genuine_accept_rate"] < 1
    other = tmp_path / "thresholds.json"
    data = json.loads(th.DEFAULT_PATH.read_text())
    data["model"]["version"] = "another-version"
    other.write_text(json.dumps(data))
    with pytest.raises(ThresholdsError, match="calibrated for"):
        load_thresholds(matcher.model, other)
    with pytest.raises(ThresholdsError):
        load_thresholds(ModelInfo("x", "y"), tmp_path / "missing.json")


def test_strict_threshold_rule():
    few = np.array([0.7, 0.45, 0.9, 0.5])
    assert th.strict_threshold(few, 1e-4) == (0.45, "lowest_impostor", 0)
    many = np.linspace(0.4, 1.0, 20_000)  # 2 false matches allowed at 1e-4
    threshold, method, allowed = th.strict_threshold(many, 1e-4)
    assert (method, allowed) == ("fmr_quantile", 2) and threshold == many[2]
    rates = th.rates(np.array([0.3, 0.39, 0.5]), many, threshold)
    assert rates["impostor_accepted"] == 2 and rates["genuine_accepted"] == 2
    assert rates["false_non_match_rate"] == pytest.approx(1 / 3, abs=1e-4)


@needs_faces
def test_calibration_runs_on_any_labelled_folder(tmp_path):
    rows = []
    for file, group in (("Wang_Yi/1.jpg", "east_southeast_asian"),
                        ("Wang_Yi/2.jpg", "east_southeast_asian"),
                        ("Yao_Ming/1.jpg", "east_southeast_asian"),
                        ("Antonio_Palocci/1.jpg", "other"), ("Antonio_Palocci/2.jpg", "other"),
                        ("Colin_Montgomerie/4.jpg", "other")):
        target = tmp_path / file
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(FACES / file, target)
        rows.append({"file": file, "identity": file.split("/")[0], "group": group})
    (tmp_path / "manifest.json").write_text(json.dumps(rows))
    doc = calibrate(tmp_path, DlibMatcher())
    assert doc["data"]["images_without_face"] == ["Colin_Montgomerie/4.jpg"]
    asian, other = doc["groups"]["east_southeast_asian"], doc["groups"]["other"]
    assert (asian["genuine_pairs"], asian["impostor_pairs"]) == (1, 2)
    assert (other["genuine_pairs"], other["impostor_pairs"]) == (1, 0)
    assert doc["groups"]["all"]["impostor_pairs"] == 2 + 3 * 2  # and the cross-group pairs
    assert asian["method"] == "lowest_impostor"
    assert doc["strict"] == min(g["strict"] for g in doc["groups"].values()
                                if g["strict"] is not None)
    assert doc["loose"] >= doc["strict"]
    assert doc["model"] == {"name": DlibMatcher.NAME, "version": DlibMatcher().model.version}


def test_loading_the_model_leaves_truncated_images_refused(matcher):
    """face_recognition turns on Pillow's global LOAD_TRUNCATED_IMAGES at import; the upload
    and document checks rely on truncated files being refused, so the matcher turns it off."""
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    noise = np.random.default_rng(2).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    with pytest.raises(FaceImageError) as err:
        matcher.encode(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert err.value.code == "truncated"
