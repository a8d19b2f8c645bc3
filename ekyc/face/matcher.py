"""Face encoders behind one small interface, so that a stronger model can replace dlib without
touching the callers (DOMAIN.md section 5).

A `Matcher` has a `model` (`ModelInfo`: name and version, recorded with every score and
stored with its calibrated thresholds), `encode(image, *, largest=True) -> Encoding | None`
and `distance(a, b) -> float` (smaller = more alike). `DlibMatcher` is the `face_recognition`
one: dlib's HOG detector (upsample 1), the 5-point landmarks, the 128-d ResNet embedding,
Euclidean distance.

Images are JPEG/PNG/WebP bytes or an RGB `uint8` array. Bytes are decoded with their EXIF
rotation applied (`face_recognition.load_image_file` ignores it, so a phone photo taken
sideways would show no face), with a size cap. Small images are upscaled before detection
(the card's portrait crop is about 220 x 300 px and HOG misses faces that fill a small image),
large ones scaled down (HOG's cost grows with the pixel count).
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

MAX_BYTES = 16 * 1024 * 1024
MAX_PIXELS = 40_000_000


class FaceImageError(ValueError):
    """The image cannot be used at all (`code`: empty, too_large, not_an_image, too_many_pixels,
    truncated). An image without a face is not an error: `encode` returns None."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class ModelInfo:
    """Which model produced a score: thresholds are only valid for the same name and version."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class Encoding:
    """One face: its embedding, where it was found (left, top, width, height in the input
    image's pixels, after EXIF rotation) and how many faces the image had."""

    vector: np.ndarray
    box: tuple[int, int, int, int]
    faces: int
    model: ModelInfo


@runtime_checkable
class Matcher(Protocol):
    """What the pipeline and the document reader need from a face model."""

    model: ModelInfo

    def encode(self, image: bytes | np.ndarray, *, largest: bool = True) -> Encoding | None:
        """The face of `image`: the largest one when `largest`, else only when the image has
        exactly one face. None when there is none (or several and not `largest`)."""
        ...

    def distance(self, a: Encoding, b: Encoding) -> float:
        """Dissimilarity of two faces of this model (0 = identical)."""
        ...


def load_rgb(image: bytes | np.ndarray, *, max_bytes: int = MAX_BYTES,
             max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An RGB uint8 array from encoded bytes (EXIF rotation applied) or an array (RGB, or
    grey, passed through). Raises `FaceImageError`."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
            raise FaceImageError("not_an_image")
        if image.ndim == 2:
            return np.ascontiguousarray(np.stack([image] * 3, axis=-1))
        if image.shape[2] == 4:
            return np.ascontiguousarray(image[..., :3])
        if image.shape[2] != 3:
            raise FaceImageError("not_an_image")
        return np.ascontiguousarray(image)
    if not isinstance(image, (bytes, bytearray, memoryview)) or len(image) == 0:
        raise FaceImageError("empty")
    if len(image) > max_bytes:
        raise FaceImageError("too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(bytes(image)))
            if img.format not in ("JPEG", "PNG", "WEBP"):
                raise FaceImageError("not_an_image")
            if img.size[0] * img.size[1] > max_pixels:
                raise FaceImageError("too_many_pixels")
            img.load()
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"))
    except FaceImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FaceImageError("too_many_pixels") from None
    except UnidentifiedImageError:
        raise FaceImageError("not_an_image") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise FaceImageError("truncated") from None


_FR: list = []
_FR_LOCK = threading.Lock()


def _face_recognition():
    """Import `face_recognition` once. Its model package imports the deprecated
    `pkg_resources`, which warns; where warnings are errors (tests) the library would call
    `quit()` on that, so it is imported with that one warning ignored. The library also turns
    on Pillow's process-wide `LOAD_TRUNCATED_IMAGES`, which would make every truncated upload
    decode silently (the upload and document checks refuse them): it is set back."""
    with _FR_LOCK:
        if not _FR:
            truncated = ImageFile.LOAD_TRUNCATED_IMAGES
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="pkg_resources is deprecated",
                                            category=UserWarning)
                    import face_recognition
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = truncated
            _FR.append(face_recognition)
        return _FR[0]


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    img = Image.fromarray(rgb)
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    method = Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS
    return np.asarray(img.resize(size, method))


class DlibMatcher:
    """`face_recognition` (dlib): HOG detector with `upsample` (1), 5-point landmarks, 128-d
    ResNet embedding, Euclidean distance. Images whose shorter side is below `min_side` are
    upscaled to it, those whose longer side is above `max_side` scaled down to it; images whose
    shorter side is then below `pad_below` get an edge-replicated border of `pad` times that
    side, so a face that fills a tight crop (the card portrait) keeps the context HOG needs."""

    NAME = "dlib-resnet-v1"

    def __init__(self, *, upsample: int = 1, min_side: int = 200, max_side: int = 1024,
                 pad: float = 0.15, pad_below: int = 400, jitters: int = 1):
        self.upsample, self.min_side, self.max_side = upsample, min_side, max_side
        self.pad, self.pad_below, self.jitters = pad, pad_below, jitters
        _face_recognition()
        import dlib
        import face_recognition_models  # already imported (and its warning handled) above

        models_version = getattr(face_recognition_models, "__version__", "unknown")
        # The version names everything that changes the numbers: the weights' package, the
        # detector and its settings, the landmark model, the preprocessing. dlib's own version
        # is informational (the same weights give the same embeddings).
        self.model = ModelInfo(
            self.NAME, f"frm{models_version}-hog{upsample}-lm5-j{jitters}-s{min_side}-{max_side}"
                       f"-pad{pad:g}@{pad_below}")
        self.dlib_version = getattr(dlib, "__version__", "unknown")

    def _prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, float, int]:
        """(image to detect on, scale from input to it, pad in its pixels)."""
        h, w = rgb.shape[:2]
        scale = 1.0
        if max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
        elif min(h, w) < self.min_side:
            scale = self.min_side / min(h, w)
        work = _resize(rgb, scale) if scale != 1.0 else rgb
        pad = 0
        if min(work.shape[:2]) < self.pad_below and self.pad > 0:
            pad = round(min(work.shape[:2]) * self.pad)
            work = np.pad(work, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        return np.ascontiguousarray(work), scale, pad

    def encode(self, image: bytes | np.ndarray, *, largest: bool = True) -> Encoding | None:
        fr = _face_recognition()
        rgb = load_rgb(image)
        work, scale, pad = self._prepare(rgb)
        boxes = fr.face_locations(work, number_of_times_to_upsample=self.upsample, model="hog")
        if not boxes or (len(boxes) > 1 and not largest):
            return None
        top, right, bottom, left = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        [vector] = fr.face_encodings(work, [(top, right, bottom, left)],
                                     num_jitters=self.jitters, model="small")
        x = max(0, round((left - pad) / scale))
        y = max(0, round((top - pad) / scale))
        box = (x, y, round((right - left) / scale), round((bottom - top) / scale))
        return Encoding(np.asarray(vector, dtype=np.float64), box, len(boxes), self.model)

    def encode_frame(self, face) -> Encoding:
        """The embedding of a face already found by `ekyc.face.frames.analyse` (no second
        detection: a burst of selfie frames is detected once and shared with liveness)."""
        from ekyc.face.frames import models

        m = models()
        shape = m["shape5"](face.rgb, face.rect)
        vector = m["encoder"].compute_face_descriptor(face.rgb, shape, self.jitters)
        return Encoding(np.asarray(vector, dtype=np.float64), tuple(face.box), face.faces,
                        self.model)

    def distance(self, a: Encoding, b: Encoding) -> float:
        if a.model != b.model:
            raise ValueError(f"encodings of different models: {a.model} vs {b.model}")
        return float(np.linalg.norm(a.vector - b.vector))


_DEFAULT: list[DlibMatcher] = []
_DEFAULT_LOCK = threading.Lock()


def default_matcher() -> DlibMatcher:
    """The process-wide dlib matcher (loading the models takes about a second)."""
    with _DEFAULT_LOCK:
        if not _DEFAULT:
            _DEFAULT.append(DlibMatcher())
        return _DEFAULT[0]
