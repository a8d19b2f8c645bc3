"""Per-frame liveness measures from the 68 landmarks already placed by `ekyc.face.frames`.

Head turns and looking up are read from the nose tip's position in the affine frame of the two
eye centres and the mouth centre (`nose_frame`): `u` across (from the subject's right eye
towards the left eye, so it grows when the nose moves towards the image's right) and `v` down
(0 at the eyes, 1 at the mouth). The nose tip stands some 2-3 cm in front of the eyes and
mouth, so a real head turn moves it within that frame (parallax), while any flat picture (a
print, a card, a screen) moved or tilted in front of the camera keeps it where it was: an
affine map leaves these coordinates unchanged, and a perspective tilt of a flat picture nearly
so. The measures are compared with the person's own first frames (the look straight at the
camera), never as absolute angles: LFW-like photos give noisy absolute solvePnP yaw.

Sign convention (frames as the camera delivers them, not the mirrored preview): the citizen
turning to their OWN left moves the nose towards the image's right, so `u` grows (and
`ekyc.face.frames.head_pose` yaw grows); looking up moves the nose towards the eyes, so `v`
falls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ekyc.face.frames import eye_aspect_ratio


@dataclass(frozen=True)
class FrameMeasures:
    u: float          # nose across the eye-mouth frame (grows: turned to the citizen's left)
    v: float          # nose down the eye-mouth frame (falls: looking up)
    ear: float        # eye aspect ratio, mean of both eyes
    eye_scale: float  # distance between the eye centres, pixels
    shape: np.ndarray  # 68 landmarks normalised by the eye centres (for motion checks)


def nose_frame(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(u, v, interocular distance) of the nose tip in the eyes-mouth affine frame."""
    right_eye = landmarks[36:42].mean(axis=0)   # subject's right: image left
    left_eye = landmarks[42:48].mean(axis=0)
    mouth = (landmarks[48] + landmarks[54]) / 2
    mid = (right_eye + left_eye) / 2
    basis = np.stack([left_eye - right_eye, mouth - mid], axis=1).astype(np.float64)
    if abs(np.linalg.det(basis)) < 1e-6:
        return 0.0, 0.0, 0.0
    u, v = np.linalg.solve(basis, (landmarks[30] - mid).astype(np.float64))
    return float(u), float(v), float(np.linalg.norm(left_eye - right_eye))


def normalised_shape(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks in a similarity frame of the eye centres (eyes at (-0.5, 0) and (0.5, 0))."""
    right_eye = landmarks[36:42].mean(axis=0)
    left_eye = landmarks[42:48].mean(axis=0)
    axis = left_eye - right_eye
    scale = float(np.linalg.norm(axis)) or 1.0
    c, s = axis / scale
    rot = np.array([[c, s], [-s, c]], dtype=np.float64)
    return ((landmarks - (right_eye + left_eye) / 2) @ rot.T) / scale


def measure(landmarks: np.ndarray) -> FrameMeasures:
    u, v, scale = nose_frame(landmarks)
    return FrameMeasures(u=u, v=v, ear=float(eye_aspect_ratio(landmarks)), eye_scale=scale,
                         shape=normalised_shape(landmarks))


__all__ = ["FrameMeasures", "measure", "normalised_shape", "nose_frame"]
