"""Image side of the document reader: safe decoding, card detection, rectification, orientation
and capture-quality measures.

Everything works on OpenCV BGR `numpy` arrays. The card layout (`FRONT_REGIONS`,
`BACK_REGIONS`) is the 2021 chip ID card (CCCD) as drawn by `ekyc.document.synth`, on the
canonical rectified card of `CARD_W` x `CARD_H` pixels (85.6 x 54 mm at ~11.7 px/mm).

Errors on input are `ImageError` with a stable `code` (see `IMAGE_ERROR_CODES`); nothing else
escapes `decode_image` for any byte string.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

CARD_W, CARD_H = 1000, 631
CARD_ASPECT = CARD_W / CARD_H

# Regions (x0, y0, x1, y1) on the canonical card. The synthetic generator draws in them, the
# reader crops them.
FRONT_REGIONS: dict[str, tuple[int, int, int, int]] = {
    "emblem": (30, 22, 162, 154),
    "qr": (808, 20, 984, 196),
    "portrait": (40, 212, 262, 508),
    "id_number": (410, 204, 800, 254),
    "full_name": (280, 282, 990, 324),
    "birth_date": (540, 328, 780, 362),
    "sex": (455, 364, 590, 398),
    "hometown": (280, 426, 990, 460),
    "residence": (280, 490, 990, 566),
    "expiry_date": (40, 560, 262, 594),
}
BACK_REGIONS: dict[str, tuple[int, int, int, int]] = {
    "mrz": (20, 418, 985, 626),
    "chip": (470, 52, 580, 140),
}

# Input limits (the upload layer enforces its own, usually stricter, caps first).
MAX_BYTES = 16 * 1024 * 1024
MAX_PIXELS = 40_000_000
WORK_LONG_SIDE = 1800  # larger photos are decoded at a reduced scale (JPEG DCT scaling)

# Capture-quality thresholds (calibrated on the synthetic set; see bench/README.md).
MIN_CARD_WIDTH = 520  # px of the card's long side in the photo
BLUR_REVIEW = 150.0  # variance of the Laplacian (contrast-stretched card) below this: blurred
GLARE_REVIEW = 0.10  # fraction of the card blown out by glare above this: too much glare

IMAGE_ERROR_CODES: dict[str, str] = {
    "empty": "no image data",
    "too_large": "the file is larger than the size cap",
    "not_an_image": "the data is not a JPEG, PNG or WebP image",
    "too_many_pixels": "the image has more pixels than allowed (decompression bomb?)",
    "truncated": "the image data is truncated or corrupt",
    "too_small": "the image is too small to hold a readable card",
}
_FORMATS = {"JPEG", "PNG", "WEBP"}


class ImageError(ValueError):
    """An input that cannot be used as a card photo; `code` is one of `IMAGE_ERROR_CODES`."""

    def __init__(self, code: str, message: str | None = None):
        super().__init__(message or IMAGE_ERROR_CODES.get(code, code))
        self.code = code


def decode_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                 work_long_side: int = WORK_LONG_SIDE) -> np.ndarray:
    """Decode `data` (JPEG, PNG or WebP) to a BGR array with its EXIF rotation applied.

    The pixel count is checked from the header before decoding; big JPEGs are decoded at a
    reduced scale so that the long side is about `work_long_side`. Raises `ImageError`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise ImageError("empty")
    if len(data) > max_bytes:
        raise ImageError("too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(bytes(data)))
            if img.format not in _FORMATS:
                raise ImageError("not_an_image")
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError("too_many_pixels")
            if min(w, h) < 64:
                raise ImageError("too_small")
            if img.format == "JPEG" and max(w, h) > work_long_side * 1.5:
                scale = work_long_side / max(w, h)
                img.draft("RGB", (int(w * scale), int(h * scale)))
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = np.asarray(img.convert("RGB"))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("too_many_pixels") from None
    except UnidentifiedImageError:
        raise ImageError("not_an_image") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise ImageError("truncated") from None
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    long_side = max(bgr.shape[:2])
    if long_side > work_long_side * 1.5:
        scale = work_long_side / long_side
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return bgr


# --- card detection -----------------------------------------------------------------------
@dataclass
class CardQuad:
    """The card outline found in a photo: corners tl, tr, br, bl (image coordinates, the long
    side first), whether it was really found (else the whole image) and whether it touches the
    image border (card partly out of frame)."""

    corners: np.ndarray
    found: bool
    touches_border: bool

    @property
    def width_px(self) -> float:
        """Length of the card's long side in the photo (mean of the two long edges)."""
        c = self.corners
        return float((np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3])) / 2)


def _order(pts: np.ndarray) -> np.ndarray:
    """Order 4 points tl, tr, br, bl (by angle around the centre), long side first."""
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # clockwise in image coordinates, starting top-left-ish
    start = int(np.argmin(pts.sum(axis=1)))
    pts = np.roll(pts, -start, axis=0)
    if np.linalg.norm(pts[1] - pts[0]) < np.linalg.norm(pts[3] - pts[0]):
        pts = np.roll(pts, -1, axis=0)  # portrait-shaped: make the long edge the top edge
    return pts


def _quad_from_contour(contour: np.ndarray) -> np.ndarray:
    hull = cv2.convexHull(contour)
    peri = cv2.arcLength(hull, True)
    for eps in (0.02, 0.03, 0.04, 0.06):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            return approx.reshape(4, 2).astype(np.float32)
    return cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float32)


def _candidates(small: np.ndarray) -> list[tuple[np.ndarray, bool]]:
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    masks = []
    med = float(np.median(blurred))
    edges = cv2.Canny(blurred, max(10, 0.5 * med), min(255, 1.2 * med) + 20)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8), iterations=2)
    outline, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(edges)  # the card's outline with everything inside it
    cv2.drawContours(filled, outline, -1, 255, thickness=cv2.FILLED)
    masks.append(filled)
    _, otsu = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    masks.append(cv2.morphologyEx(otsu, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)))
    # Saturation: the card is pale, many backgrounds (wood, fabric) are not.
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    _, sat = cv2.threshold(cv2.GaussianBlur(hsv[:, :, 1], (5, 5), 0), 0, 255,
                           cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    masks.append(cv2.morphologyEx(sat, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)))
    out = []
    for k, mask in enumerate(masks):
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:3]:
            # An edge outline may not close (noise, glare on the border): judge it by its hull.
            out.append((contour, k == 0))
    return out


def _touches(contour: np.ndarray, shape: tuple[int, ...], margin: int = 2) -> bool:
    x, y, bw, bh = cv2.boundingRect(contour)
    return x <= margin or y <= margin or x + bw >= shape[1] - margin or y + bh >= shape[0] - margin


def _score(quad: np.ndarray, contour: np.ndarray, area: float, touches: bool,
           hull: bool = False) -> float:
    """How card-like a quad is: big, rectangular (filled), with the card's aspect ratio; one
    that runs into the image border (often the card merged with the background) loses."""
    q = _order(quad)
    qa = cv2.contourArea(q)
    if qa < 0.12 * area or (touches and qa > 0.85 * area):
        return -1.0
    shape = cv2.convexHull(contour) if hull else contour
    fill = cv2.contourArea(shape) / max(qa, 1.0)
    long_side = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    short_side = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    aspect = long_side / max(short_side, 1.0)
    if not 1.25 <= aspect <= 2.0 or fill < 0.8 or qa > 0.97 * area:
        return -1.0
    score = qa / area * min(fill, 1.0) * (1.0 - abs(aspect - CARD_ASPECT) / CARD_ASPECT)
    return score * (0.25 if touches else 1.0)


def detect_card(img: np.ndarray) -> CardQuad:
    """Find the card outline in a photo; falls back to the whole image (`found=False`)."""
    h, w = img.shape[:2]
    scale = 480.0 / max(h, w)
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    best, best_score, best_touches = None, 0.0, True
    for contour, hull in _candidates(small):
        quad = _quad_from_contour(contour)
        touches = _touches(contour, small.shape)
        score = _score(quad, contour, float(sh * sw), touches, hull)
        if score > best_score:
            best, best_score, best_touches = quad, score, touches
    if best is None:
        corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
        return CardQuad(_order(corners), found=False, touches_border=True)
    return CardQuad(_order(best / scale), found=True, touches_border=bool(best_touches))


def rectify(img: np.ndarray, quad: CardQuad) -> np.ndarray:
    """The card warped to the canonical `CARD_W` x `CARD_H` (landscape, orientation unknown)."""
    dst = np.array([[0, 0], [CARD_W - 1, 0], [CARD_W - 1, CARD_H - 1], [0, CARD_H - 1]],
                   np.float32)
    matrix = cv2.getPerspectiveTransform(quad.corners.astype(np.float32), dst)
    return cv2.warpPerspective(img, matrix, (CARD_W, CARD_H), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def rotate180(img: np.ndarray) -> np.ndarray:
    """The image turned upside down."""
    return cv2.rotate(img, cv2.ROTATE_180)


def crop(card: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A region of the canonical card."""
    x0, y0, x1, y1 = box
    return card[y0:y1, x0:x1]


# --- orientation ----------------------------------------------------------------------------
def _long_text_rows(gray: np.ndarray) -> np.ndarray:
    """Per row of a card-sized gray image, the fraction of the width covered by dark text once
    characters are smeared horizontally: MRZ lines cover ~90 %, ordinary text much less."""
    small = cv2.resize(gray, (500, int(500 * gray.shape[0] / gray.shape[1])),
                       interpolation=cv2.INTER_AREA)
    blackhat = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT,
                                cv2.getStructuringElement(cv2.MORPH_RECT, (13, 7)))
    otsu, _ = cv2.threshold(blackhat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # An absolute floor: on a blurred or flat image Otsu would split mere noise.
    _, mask = cv2.threshold(blackhat, max(otsu, 28), 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE,
                            cv2.getStructuringElement(cv2.MORPH_RECT, (15, 1)))
    return (mask > 0).mean(axis=1)


def _line_runs(cover: np.ndarray, min_cover: float) -> list[tuple[int, int]]:
    """Runs of consecutive rows covered like a text line (6-30 rows at the 500 px scale)."""
    runs, start = [], None
    flags = list(cover >= min_cover) + [False]
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if 6 <= i - start <= 30:
                runs.append((start, i))
            start = None
    return runs


def mrz_rows(card_gray: np.ndarray, min_cover: float = 0.6) -> tuple[int, int, bool] | None:
    """Where the long MRZ-like text lines of a card-sized image are: (top, bottom, upside_down)
    in image rows, or None when there are fewer than two such lines. Lines in the top half
    mean the card is upside down."""
    cover = _long_text_rows(card_gray)
    n = len(cover)
    margin = max(3, n // 40)
    cover[:margin] = 0  # rectification edges are not text
    cover[-margin:] = 0
    runs = _line_runs(cover, min_cover)
    bottom = [r for r in runs if (r[0] + r[1]) / 2 >= n * 0.55]
    top = [r for r in runs if (r[0] + r[1]) / 2 <= n * 0.45]
    weight_b = sum(b - a for a, b in bottom)
    weight_t = sum(b - a for a, b in top)
    chosen, upside_down = (bottom, False) if weight_b >= weight_t else (top, True)
    if len(chosen) < 2:
        return None
    factor = card_gray.shape[0] / n
    return (int(chosen[0][0] * factor), int(chosen[-1][1] * factor), upside_down)


def back_is_upside_down(card_gray: np.ndarray) -> bool | None:
    """True when the MRZ lines sit in the top half (card upside down), None when none found."""
    found = mrz_rows(card_gray)
    return None if found is None else found[2]


def front_is_upside_down(card_gray: np.ndarray) -> bool:
    """True when the QR code's texture is bottom-left rather than top-right (card turned)."""
    def energy(img: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(img, cv2.CV_32F)).mean())

    box = FRONT_REGIONS["qr"]
    upright = energy(crop(card_gray, box))
    turned = energy(crop(rotate180(card_gray), box))
    return turned > upright


# --- quality --------------------------------------------------------------------------------
@dataclass
class Quality:
    """Capture-quality measures of one side."""

    blur: float  # variance of the Laplacian on the rectified card (higher = sharper)
    glare: float  # fraction of saturated pixels on the card
    resolution: float  # card long side in photo pixels
    card_in_frame: bool
    card_found: bool

    def to_dict(self) -> dict:
        """JSON-safe form."""
        return {"blur": round(self.blur, 1), "glare": round(self.glare, 4),
                "resolution": round(self.resolution), "card_in_frame": self.card_in_frame,
                "card_found": self.card_found}

    def problems(self) -> list[str]:
        """Codes of the measures that fail the capture gate (`quality_*`)."""
        out = []
        if not self.card_found or not self.card_in_frame:
            out.append("quality_card_not_in_frame")
        if self.resolution < MIN_CARD_WIDTH:
            out.append("quality_resolution")
        if self.blur < BLUR_REVIEW:
            out.append("quality_blur")
        if self.glare > GLARE_REVIEW:
            out.append("quality_glare")
        return out


def glare_fraction(region: np.ndarray) -> float:
    """Fraction of a (BGR) region blown out by glare: smoothed first, so that speckles of
    noise do not count."""
    darkest = cv2.GaussianBlur(region.min(axis=2), (0, 0), 2)
    return float((darkest >= 250).mean())


def measure_quality(card: np.ndarray, quad: CardQuad) -> Quality:
    """Blur, glare, resolution and framing of a rectified card."""
    gray = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY)
    inner = cv2.resize(gray[20:-20, 20:-20], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    # Sharpness on a contrast-stretched image, so that dim light does not read as blur.
    lo, hi = np.percentile(inner, (2, 98))
    stretched = np.clip((inner - lo) * (255.0 / max(hi - lo, 16.0)), 0, 255).astype(np.float32)
    blur = float(cv2.Laplacian(stretched, cv2.CV_32F).var())
    glare = glare_fraction(card[20:-20, 20:-20])
    return Quality(blur=blur, glare=glare, resolution=quad.width_px,
                   card_in_frame=quad.found and not quad.touches_border, card_found=quad.found)
