"""Passive presentation-attack cues on one face: texture (LBP), moire (FFT peaks), screen
reflection (specular highlights) and a print's washed-out colour. An additional signal only (DOMAIN.md section 6: published
error of such cues is ~5-15%, and ours are hand-set, not trained): `check.verify` sends a
high score to review and never fails on it alone.

    result = score(face)            # face: ekyc.face.frames.FaceFrame
    result.attack_score             # 0 (looks live) .. 1 (looks like a print or a screen)
    result.cues                     # {"moire": .., "lbp_flat": .., "specular": .., ...}

Cost: one crop around the face scaled to 128 x 128, an FFT and an LBP histogram (~2 ms).
A trained presentation attack detector plugs in here: anything with `score(face) ->
PassiveResult` (set `ekyc.liveness.passive.DETECTOR`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CROP = 128


@dataclass
class PassiveResult:
    attack_score: float
    cues: dict = field(default_factory=dict)


def _crop(face) -> np.ndarray:
    import cv2

    x, y, w, h = face.box
    H, W = face.rgb.shape[:2]
    cx, cy, side = x + w / 2, y + h / 2, max(w, h) * 1.2
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(W, cx + side / 2)), int(min(H, cy + side / 2))
    crop = face.rgb[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if crop.shape[0] > CROP else cv2.INTER_LINEAR
    return cv2.resize(crop, (CROP, CROP), interpolation=interp)


def _moire(grey: np.ndarray) -> float:
    """Strongest isolated peak of the mid/high spatial frequencies over their median: the
    beat pattern of a screen's pixel grid (or a print's halftone) against the camera's."""
    g = grey - grey.mean()
    g = g * np.outer(np.hanning(CROP), np.hanning(CROP))
    mag = np.abs(np.fft.fftshift(np.fft.fft2(g)))
    yy, xx = np.mgrid[0:CROP, 0:CROP] - CROP // 2
    r = np.hypot(xx, yy)
    band = mag[(r > CROP * 0.12) & (r < CROP * 0.48)]
    return float(np.log(band.max() / (np.median(band) + 1e-6)))


def _lbp_flat(grey: np.ndarray) -> float:
    """Share of 'flat' LBP codes (all neighbours >= centre or all <): skin photographed live has
    fine texture; a recaptured face is smoothed by two optics and a display or a print."""
    c = grey[1:-1, 1:-1]
    code = np.zeros_like(c, dtype=np.uint8)
    shifts = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    for bit, (dy, dx) in enumerate(shifts):
        n = grey[1 + dy:grey.shape[0] - 1 + dy, 1 + dx:grey.shape[1] - 1 + dx]
        code |= ((n >= c + 2).astype(np.uint8) << bit)
    return float(((code == 0) | (code == 255)).mean())


def _inner(face) -> np.ndarray:
    """The face box without its outer eighth on each side: skin, no background or collar."""
    x, y, w, h = face.box
    crop = face.rgb[y + h // 8:y + h - h // 8, x + w // 8:x + w - w // 8]
    return crop if crop.size else face.rgb


def _specular(rgb: np.ndarray) -> float:
    """Share of near-white, colourless pixels: a screen's or glossy print's reflection. Taken
    on the face itself (`_inner`): a white wall or shirt around a live face is not one."""
    f = rgb.astype(np.float32)
    bright = f.min(axis=2) > 235
    grey = (f.max(axis=2) - f.min(axis=2)) < 18
    return float((bright & grey).mean())


def _logistic(x: float, mid: float, scale: float) -> float:
    return float(1 / (1 + np.exp(-(x - mid) / scale)))


def builtin_score(face) -> PassiveResult:
    import cv2

    rgb = _crop(face)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    moire, flat, spec = _moire(grey), _lbp_flat(grey), _specular(_inner(face))
    sat = float(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255)
    parts = {"moire": _logistic(moire, 5.6, 0.35), "lbp_flat": _logistic(flat, 0.55, 0.06),
             "specular": _logistic(spec, 0.06, 0.015),
             # a print's washed-out colour (faces under ordinary light stay above ~0.25)
             "desaturated": _logistic(0.19 - sat, 0.0, 0.025)}
    attack = 1 - float(np.prod([1 - p for p in parts.values()]))
    cues = {"moire_peak": round(moire, 3), "lbp_flat_share": round(flat, 3),
            "specular_share": round(spec, 4), "saturation": round(sat, 3),
            **{f"p_{k}": round(v, 3) for k, v in parts.items()}}
    return PassiveResult(round(attack, 4), cues)


DETECTOR = builtin_score


def score(face) -> PassiveResult:
    """The attack score of one face (`ekyc.face.frames.FaceFrame`)."""
    return DETECTOR(face)


__all__ = ["DETECTOR", "PassiveResult", "builtin_score", "score"]
