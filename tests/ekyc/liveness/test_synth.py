"""The generated head movements (`ekyc.liveness.synth.Head.rotated`) read, in dlib's landmarks,
as a real head's would: the nose moves against the eyes and mouth in the asked direction, more
for a larger angle, by about what a real head's geometry gives, and the background stays put.
Real faces-dev photos (`EKYC_TEST_DATA`)."""

import math
import os
from pathlib import Path

import numpy as np
import pytest

DATA = Path(os.environ.get("EKYC_TEST_DATA")
            or Path(__file__).resolve().parents[3].parent / "shared" / "data") / "faces-dev"
pytestmark = pytest.mark.skipif(not (DATA / "manifest.json").is_file(),
                                reason="faces-dev test data not found (set EKYC_TEST_DATA)")

PHOTOS = ["Hideki_Matsui/1.jpg", "Nan_Wang/1.jpg", "Roman_Polanski/2.jpg",
          "Tommy_Thompson/6.jpg", "Paul_Tagliabue/1.jpg"]  # the last two smeared under the old warp


def _head(name):
    from ekyc.liveness import synth

    return synth.Head((DATA / name).read_bytes())


@pytest.fixture(scope="module", params=PHOTOS)
def head(request):
    return _head(request.param)


def _nose(head, yaw, pitch):
    from ekyc.face.frames import analyse
    from ekyc.liveness.measures import nose_frame

    straight = analyse(head.rgb)
    face = analyse(head.rotated(yaw, pitch), hint=straight.box)
    assert face is not None, (yaw, pitch)
    u0, v0, _ = nose_frame(straight.landmarks)
    u, v, _ = nose_frame(face.landmarks)
    return u - u0, v - v0


@pytest.mark.parametrize("side", [1, -1], ids=["turn_left", "turn_right"])
def test_a_turn_moves_the_nose_towards_it_more_the_further_it_goes(head, side):
    moved = [side * _nose(head, side * angle, 0)[0] for angle in (10, 20, 30)]
    assert 0 < moved[0] < moved[1] < moved[2], moved


def test_a_turn_moves_the_nose_about_as_far_as_on_a_real_head():
    # a real head: the nose tip ~0.4 of the eye distance in front of the eyes and mouth, so a
    # 20-degree turn moves it ~0.4 tan(20) = 0.15 (dlib reads less on some faces, e.g. glasses)
    heads = [_head(name) for name in PHOTOS]
    moved = [side * _nose(h, side * 20, 0)[0] for h in heads for side in (1, -1)]
    assert 0.3 * math.tan(math.radians(20)) < np.median(moved) < 0.6 * math.tan(math.radians(20))


def test_looking_up_moves_the_nose_towards_the_eyes(head):
    up = [-_nose(head, 0, angle)[1] for angle in (8, 16, 24)]
    assert 0 < up[0] < up[1] < up[2], up


def test_the_background_stays_put_and_a_look_straight_is_the_photo(head):
    turned = head.rotated(25, 0).astype(int)
    for corner in ((0, 0), (0, -1), (-1, 0), (-1, -1)):  # the frame's corners stay put
        assert np.array_equal(turned[corner], head.rgb[corner])
    assert np.abs(turned - head.rgb).mean() > 5  # while the head turned
    assert np.array_equal(head.rotated(0, 0), head.rgb)
