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

Eyes shut are read two ways: the eye aspect ratio of the six eye landmarks (Soukupova and Cech
2016), and the eyes' appearance (`eye_patches`): each eye cut out in the frame of its two
corners, grey, normalised for brightness and contrast, and compared with the same person's
open eyes (normalised cross-correlation, `eye_similarity`). A shut eye loses the dark iris and
the white sclera, so its patch stops looking like the open one even where dlib's eye contour,
trained mostly on open eyes, stays open around the lash line (small or low-resolution eyes).

Sign convention (frames as the camera delivers them, not the mirrored preview): the citizen
turning to their OWN left moves the nose towards the image's right, so `u` grows (and
`ekyc.face.frames.head_pose` yaw grows); looking up moves the nose towards the eyes, so `v`
falls.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ekyc.face.frames import eye_aspect_ratio

PATCH_W, PATCH_H, PATCH_MARGIN = 48, 24, 8  # eye patch size; the corners 8 px from its sides


@dataclass(frozen=True)
class FrameMeasures:
    u: float          # nose across the eye-mouth frame (grows: turned to the citizen's left)
    v: float          # nose down the eye-mouth frame (falls: looking up)
    ear: float        # eye aspect ratio, mean of both eyes
    eye_scale: float  # distance between the eye centres, pixels
    shape: np.ndarray  # 68 landmarks normalised by the eye centres (for motion checks)
    eyes: np.ndarray | None = None  # (2, PATCH_H, PATCH_W) normalised eye patches, or None


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


def eye_patches(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Both eyes as (2, PATCH_H, PATCH_W) float32 patches: cut out in a similarity frame that
    puts each eye's outer and inner corner (landmarks 36/39, 42/45) on the patch's middle line
    `PATCH_MARGIN` px from its sides, grey, lightly blurred, zero mean and unit variance (so
    that light, shake and distance to the camera do not matter)."""
    out = np.empty((2, PATCH_H, PATCH_W), np.float32)
    for eye, (a, b) in enumerate(((36, 39), (42, 45))):
        p1, p4 = landmarks[a].astype(np.float64), landmarks[b].astype(np.float64)
        length = float(np.linalg.norm(p4 - p1)) or 1.0
        c, s = (p4 - p1) / length
        zoom = (PATCH_W - 2 * PATCH_MARGIN) / length
        mat = np.array([[zoom * c, zoom * s, 0.0], [-zoom * s, zoom * c, 0.0]])
        mat[:, 2] = np.array([PATCH_MARGIN, PATCH_H / 2]) - mat[:, :2] @ p1
        patch = cv2.warpAffine(rgb, mat, (PATCH_W, PATCH_H), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE).astype(np.float32).mean(axis=2)
        patch = cv2.GaussianBlur(patch, (3, 3), 0)
        out[eye] = (patch - patch.mean()) / (patch.std() + 1e-6)
    return out


def normalise_patches(patches: np.ndarray) -> np.ndarray:
    """Each eye patch back to zero mean and unit variance (after averaging several)."""
    mean = patches.mean(axis=(1, 2), keepdims=True)
    return (patches - mean) / (patches.std(axis=(1, 2), keepdims=True) + 1e-6)


def eye_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two `eye_patches` results, averaged over both eyes
    (1: alike; an open against a shut eye typically 0.3-0.8, open against open above 0.9)."""
    return float(np.mean(a * b))


def measure(landmarks: np.ndarray, rgb: np.ndarray | None = None) -> FrameMeasures:
    """The measures of one face; with the frame's `rgb`, also its eye patches."""
    u, v, scale = nose_frame(landmarks)
    return FrameMeasures(u=u, v=v, ear=float(eye_aspect_ratio(landmarks)), eye_scale=scale,
                         shape=normalised_shape(landmarks),
                         eyes=None if rgb is None else eye_patches(rgb, landmarks))


__all__ = ["FrameMeasures", "eye_patches", "eye_similarity", "measure", "normalise_patches",
           "normalised_shape", "nose_frame"]
