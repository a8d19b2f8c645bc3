"""Replay fingerprints: a 64-bit perceptual hash per frame, so the server can tell a frame it has
already seen (in another session, or twice in one burst) even after JPEG re-encoding, resizing
or a small brightness change.

    h = fingerprint(rgb)          # int, 0 <= h < 2**64
    near(h, other)                # Hamming distance <= NEAR_BITS
    static_sequence(burst)        # a still picture sent again and again

The hash is the classic DCT pHash: greyscale, 32 x 32, 2-D DCT, the 8 x 8 lowest frequencies
without the DC term compared with their median. It is not a cryptographic hash: similar frames
of one live session are also near (the check across sessions compares a burst's frames with
other cases' frames; within a burst, `static_sequence` adds the landmark motion).
"""

from __future__ import annotations

import numpy as np

NEAR_BITS = 10


def fingerprint(rgb) -> int:
    """64-bit perceptual hash of an RGB (or grey) uint8 image, or of image bytes."""
    import cv2

    if isinstance(rgb, (bytes, bytearray)):
        from ekyc.face.matcher import load_rgb

        rgb = load_rgb(bytes(rgb))
    img = np.asarray(rgb)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low[1:] > np.median(low[1:])
    value = 0
    for i, bit in enumerate(bits):
        value |= int(bit) << i
    return value  # 63 bits used; bit 63 stays 0 so it fits a signed BIGINT


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def near(a: int, b: int, bits: int = NEAR_BITS) -> bool:
    """The same picture, give or take re-encoding."""
    return distance(a, b) <= bits


def static_sequence(burst, *, motion: float = 0.04) -> bool:
    """True when a burst is a still picture sent again and again: every face frame's
    fingerprint near the first one's AND the landmarks (normalised by the eyes) hardly move.
    Frames without a face are ignored; fewer than two faces is not a sequence (False)."""
    from ekyc.liveness.measures import normalised_shape

    faces = [f for f in burst.faces if f is not None]
    if len(faces) < 2:
        return False
    prints = [fingerprint(f.rgb) for f in faces]
    if not all(near(prints[0], p) for p in prints[1:]):
        return False
    shapes = [normalised_shape(f.landmarks) for f in faces]
    moved = max(float(np.sqrt(((s - shapes[0]) ** 2).sum(axis=1).mean())) for s in shapes)
    return moved < motion


__all__ = ["NEAR_BITS", "distance", "fingerprint", "near", "static_sequence"]
