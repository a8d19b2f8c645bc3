"""The passive cues on made-up faces: a reflection is looked for on the face, not around it."""

from types import SimpleNamespace

import numpy as np

from ekyc.liveness.passive import score


def _face(white_inside: bool):
    rng = np.random.default_rng(0)
    rgb = rng.normal((170, 120, 100), 12, (240, 240, 3)).clip(0, 255).astype(np.uint8)
    rgb[:, :50] = rgb[:, 190:] = 250            # a white wall or collar around the face
    if white_inside:
        rgb[90:140, 90:150] = 250               # a screen's reflection on the face
    return SimpleNamespace(box=(60, 60, 120, 120), rgb=rgb)


def test_white_background_is_not_a_reflection():
    assert score(_face(False)).cues["p_specular"] < 0.1


def test_a_white_patch_on_the_face_is():
    assert score(_face(True)).cues["p_specular"] > 0.9
