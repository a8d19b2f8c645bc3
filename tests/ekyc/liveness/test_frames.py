"""A burst's face followed from frame to frame (`ekyc.face.frames.analyse(..., hint=...)`), with
real faces-dev photos (`EKYC_TEST_DATA`)."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(os.environ.get("EKYC_TEST_DATA")
            or Path(__file__).resolve().parents[3].parent / "shared" / "data") / "faces-dev"
pytestmark = pytest.mark.skipif(not (DATA / "manifest.json").is_file(),
                                reason="faces-dev test data not found (set EKYC_TEST_DATA)")


def _head(name):
    from ekyc.liveness import synth

    return synth.Head((DATA / name).read_bytes())


def test_a_head_turned_past_the_frontal_detector_is_followed_from_the_previous_frame():
    from ekyc.face.frames import analyse
    from ekyc.liveness.check import TURN_DELTA
    from ekyc.liveness.measures import nose_frame

    head = _head("Evander_Holyfield/2.jpg")
    straight = analyse(head.rgb)
    turned = head.rotated(-20, 0)  # turned to his right, as a challenge asks
    assert analyse(turned) is None  # dlib's frontal detector scores it under its threshold
    face = analyse(turned, hint=straight.box)
    assert face is not None
    # the landmarks read the turn (the nose towards the image's left)
    assert nose_frame(face.landmarks)[0] - nose_frame(straight.landmarks)[0] < -TURN_DELTA


def test_a_weak_detection_away_from_the_previous_face_is_not_taken():
    from ekyc.face.frames import analyse

    head = _head("Evander_Holyfield/2.jpg")
    turned = head.rotated(-20, 0)
    h, w = turned.shape[:2]
    assert analyse(turned, hint=(0, 0, w // 5, h // 5)) is None


def test_a_bystander_with_a_larger_face_does_not_take_over_the_burst():
    from ekyc.face.frames import analyse

    citizen = _head("Hideki_Matsui/1.jpg").rgb
    bystander = cv2.resize(_head("Roman_Polanski/2.jpg").rgb, (640, 640))
    frame = np.zeros((480, 720, 3), np.uint8)
    frame[:, 240:] = cv2.resize(citizen, (480, 480))
    frame[:, :240] = bystander[80:560, 200:440]  # a larger face at the picture's edge
    alone = analyse(np.ascontiguousarray(frame[:, 240:]))
    x, y, bw, bh = alone.box
    previous = (x + 240, y, bw, bh)
    assert analyse(frame).box[0] < 240  # on its own: the largest face, the bystander's
    followed = analyse(frame, hint=previous)
    assert followed.faces == 2 and followed.box[0] >= 240
