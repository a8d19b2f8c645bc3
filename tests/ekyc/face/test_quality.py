"""Quality gates on real faces (faces-dev): a good photo passes, and each degradation a citizen
can fix (blur, dark, glare, shade on one side, too far, someone else in the picture, head
turned, eyes closed) is named with a message telling what to change."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from ekyc.face.frames import analyse
from ekyc.face.quality import PROBLEMS, QUALITY_MESSAGES, assess
from tests.ekyc.face.test_matcher import FACES, needs_faces

pytestmark = needs_faces


@pytest.fixture(scope="module")
def face():
    found = analyse((FACES / "Wang_Yi/1.jpg").read_bytes())
    assert found is not None
    return found


def _with(face, rgb=None, **changes):
    return replace(face, rgb=np.ascontiguousarray(rgb) if rgb is not None else face.rgb,
                   **changes)


def test_a_good_photo_passes(face):
    q = assess(face, kind="selfie")
    assert q.ok and q.problems == []
    assert {"face_width", "sharpness", "brightness", "yaw", "ear"} <= q.measures.keys()
    assert assess(face, kind="portrait").ok


def test_no_face_and_several_faces(face):
    assert assess(None).problems == ["no_face"]
    assert assess(_with(face, faces=2)).problems == ["several_faces"]
    assert assess(_with(face, faces=2), kind="portrait").ok  # the card crop: largest face


@pytest.mark.parametrize("change, problem", [
    (lambda rgb: cv2.GaussianBlur(rgb, (0, 0), 3), "blurred"),
    (lambda rgb: (rgb * 0.25).astype(np.uint8), "too_dark"),
    (lambda rgb: np.clip(rgb * 0.4 + 190, 0, 255).astype(np.uint8), "too_bright"),
])
def test_image_degradations_are_named(face, change, problem):
    assert problem in assess(_with(face, change(face.rgb))).problems


def test_one_side_in_shadow(face):
    rgb = face.rgb.copy()
    nose = int(face.landmarks[30][0])
    rgb[:, :nose] = (rgb[:, :nose] * 0.3).astype(np.uint8)
    assert "uneven_light" in assess(_with(face, rgb)).problems


def test_too_far_away(face):
    half = cv2.resize(face.rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    x, y, w, h = face.box
    small = _with(face, half, box=(x // 2, y // 2, w // 2, h // 2),
                  landmarks=face.landmarks / 2, size=(half.shape[1], half.shape[0]))
    assert "face_too_small" in assess(small).problems
    assert "face_too_small" not in assess(small, kind="portrait").problems


def test_eyes_closed(face):
    points = face.landmarks.copy()
    for eye in (range(36, 42), range(42, 48)):
        idx = list(eye)
        mid = points[idx, 1].mean()
        points[idx, 1] = mid  # lids meet
    assert assess(_with(face, landmarks=points)).problems == ["eyes_closed"]


def test_head_turned():
    turned = analyse((FACES / "Yao_Ming/1.jpg").read_bytes())  # a profile-ish photo
    assert turned is not None
    assert "turned_away" in assess(turned).problems


def test_every_problem_has_a_message():
    assert set(QUALITY_MESSAGES) == set(PROBLEMS)
    assert all(len(str(QUALITY_MESSAGES[p])) > 20 for p in PROBLEMS)
