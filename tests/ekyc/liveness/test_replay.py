"""Replay fingerprints: the same picture re-encoded is near, another picture is not."""

import io

import numpy as np
from PIL import Image

from ekyc.liveness.replay import distance, fingerprint, near


def _picture(seed):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((640, 480), Image.Resampling.BICUBIC))


def _reencode(rgb, quality, scale=1.0):
    img = Image.fromarray(rgb)
    if scale != 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_fingerprint_is_64_bit_and_survives_jpeg_and_resizing():
    rgb = _picture(1)
    h = fingerprint(rgb)
    assert 0 <= h < 2 ** 63
    assert near(h, fingerprint(_reencode(rgb, 60)))
    assert near(h, fingerprint(_reencode(rgb, 85, scale=0.5)))
    brighter = np.clip(rgb.astype(int) + 12, 0, 255).astype(np.uint8)
    assert near(h, fingerprint(brighter))


def test_other_pictures_are_far():
    prints = [fingerprint(_picture(seed)) for seed in range(8)]
    for i in range(8):
        for j in range(i + 1, 8):
            assert not near(prints[i], prints[j]), distance(prints[i], prints[j])


def test_bytes_are_accepted():
    buf = io.BytesIO()
    Image.fromarray(_picture(2)).save(buf, "PNG")
    assert fingerprint(buf.getvalue()) == fingerprint(_picture(2))
