"""Tesseract OCR for the card reader (via pytesseract, which runs the `tesseract` program).

- `ocr_mrz(band)`: the machine readable zone (OCR-B), `eng` model restricted to `A-Z0-9<`,
  page segmentation 6 (a uniform block of text), dictionaries off.
- `ocr_fields(crops)`: the printed front fields with the `vie` model; the crops are stacked into
  one image so that one Tesseract run reads them all (a run costs ~0.1 s of start-up alone).

Every call has a timeout (`OCRError` with code `timeout` when it expires, `unavailable` when
Tesseract is missing). Tesseract's OpenMP threads are limited to one (`OMP_THREAD_LIMIT`, set
here when unset): on small crops threads only add CPU time.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import pytesseract  # after OMP_THREAD_LIMIT: inherited by every tesseract run

MRZ_WHITELIST = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
MRZ_TIMEOUT = 8.0  # seconds
FIELDS_TIMEOUT = 10.0
MRZ_CHAR_HEIGHT = 34  # px: Tesseract's LSTM models read best at ~30-40 px capitals
OCRB_FONT = Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf")
MRZ_COLUMNS = 30  # TD1


class OCRError(RuntimeError):
    """Tesseract failed: `code` is `timeout`, `unavailable` or `failed`."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code


@lru_cache(maxsize=1)
def tesseract_version() -> str:
    """The Tesseract version string, or "unavailable"."""
    try:
        return str(pytesseract.get_tesseract_version())
    except (pytesseract.TesseractNotFoundError, OSError, subprocess.SubprocessError):
        return "unavailable"


def _run(image: np.ndarray, *, lang: str, config: str, timeout: float, data: bool = False):
    try:
        if data:
            return pytesseract.image_to_data(image, lang=lang, config=config, timeout=timeout,
                                             output_type=pytesseract.Output.DICT)
        return pytesseract.image_to_string(image, lang=lang, config=config, timeout=timeout)
    except RuntimeError as exc:  # pytesseract raises a bare RuntimeError on timeout
        if "timeout" in str(exc).lower():
            raise OCRError("timeout", "Tesseract timed out") from None
        raise OCRError("failed", "Tesseract failed") from None
    except pytesseract.TesseractNotFoundError:
        raise OCRError("unavailable", "Tesseract is not installed") from None
    except (pytesseract.TesseractError, OSError):
        raise OCRError("failed", "Tesseract failed") from None


def flatten(gray: np.ndarray) -> np.ndarray:
    """Gray text with the background (uneven light, glare) divided out."""
    background = cv2.morphologyEx(gray, cv2.MORPH_CLOSE,
                                  cv2.getStructuringElement(cv2.MORPH_RECT, (25, 25)))
    return cv2.divide(gray, background, scale=255)


def binarize(gray: np.ndarray) -> np.ndarray:
    """Black text on white: background flattened (uneven light, glare), then Otsu."""
    background = cv2.morphologyEx(gray, cv2.MORPH_CLOSE,
                                  cv2.getStructuringElement(cv2.MORPH_RECT, (25, 25)))
    flat = cv2.divide(gray, background, scale=255)
    _, out = cv2.threshold(flat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return out


def prepare_mrz(band: np.ndarray, char_height: float | None = None) -> np.ndarray:
    """OCR-B-friendly image of an MRZ band (BGR or gray): scaled so that capitals are about
    `MRZ_CHAR_HEIGHT` px, background flattened, binarized, with a white margin."""
    gray = band if band.ndim == 2 else cv2.cvtColor(band, cv2.COLOR_BGR2GRAY)
    if char_height:
        scale = MRZ_CHAR_HEIGHT / char_height
        if abs(scale - 1) > 0.1:
            gray = cv2.resize(gray, None, fx=scale, fy=scale,
                              interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    out = binarize(gray)
    return cv2.copyMakeBorder(out, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255)


def ocr_mrz(image: np.ndarray, *, timeout: float = MRZ_TIMEOUT) -> list[str]:
    """MRZ text lines (spaces removed, only `A-Z0-9<`) of a prepared MRZ image, longest
    candidates kept in reading order."""
    config = (f"--psm 6 --oem 1 -c tessedit_char_whitelist={MRZ_WHITELIST} "
              "-c load_system_dawg=0 -c load_freq_dawg=0")
    text = _run(image, lang="eng", config=config, timeout=timeout)
    lines = []
    for raw in text.splitlines():
        line = re.sub(r"[^A-Z0-9<]", "", raw.upper())
        if len(line) >= 20:
            lines.append(line)
    return lines


def ocr_line(image: np.ndarray, *, whitelist: str = "", lang: str = "eng",
             timeout: float = FIELDS_TIMEOUT) -> str:
    """One line of text (page segmentation 7), optionally restricted to `whitelist`."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    config = "--psm 7 --oem 1" + (f" -c tessedit_char_whitelist={whitelist}" if whitelist else "")
    padded = cv2.copyMakeBorder(flatten(gray), 16, 16, 16, 16, cv2.BORDER_CONSTANT, value=255)
    return _run(padded, lang=lang, config=config, timeout=timeout).strip()


def ocr_fields(crops: dict[str, np.ndarray], *, lang: str = "vie", config_extra: str = "",
               binary_input: bool = True, timeout: float = FIELDS_TIMEOUT) -> dict[str, str]:
    """OCR several single-line-ish field crops in one Tesseract run.

    The crops (BGR or gray) are binarized and stacked vertically with white gaps; the words
    Tesseract finds are assigned back to the crop they fall in. Returns {name: text}.
    """
    if not crops:
        return {}
    parts, spans, y = [], [], 0
    width = max(c.shape[1] for c in crops.values()) + 40
    gap = 24
    for name, image in crops.items():
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        binary = binarize(gray) if binary_input else flatten(gray)
        h, w = binary.shape
        padded = np.full((h + gap, width), 255, np.uint8)
        padded[gap // 2:gap // 2 + h, 20:20 + w] = binary
        parts.append(padded)
        spans.append((name, y, y + h + gap))
        y += h + gap
    sheet = np.vstack(parts)
    data = _run(sheet, lang=lang, config="--psm 6 --oem 1" + config_extra, timeout=timeout,
                data=True)
    words: dict[str, list[tuple[int, int, int, str]]] = {name: [] for name in crops}
    for i, text in enumerate(data["text"]):
        text = text.strip()
        if not text or float(data["conf"][i]) < 0:
            continue
        cy = data["top"][i] + data["height"][i] / 2
        for name, top, bottom in spans:
            if top <= cy < bottom:
                words[name].append((data["block_num"][i] * 10_000 + data["par_num"][i] * 1000
                                    + data["line_num"][i], data["left"][i], i, text))
                break
    out = {}
    for name, items in words.items():
        items.sort()
        lines: dict[int, list[str]] = {}
        for line, _, _, text in items:
            lines.setdefault(line, []).append(text)
        out[name] = "\n".join(" ".join(ws) for ws in lines.values())
    return out


# --- MRZ with the fillers located by template matching -----------------------------------------
# Tesseract's English model reads runs of the filler '<' badly (as 'K', or drops some, and with
# them the check digit that follows). The filler's chevron is easy to find by template matching,
# so: find the chevrons, erase them, let Tesseract read only the letters and digits, and put
# every character back in its column (the MRZ is monospaced).

@lru_cache(maxsize=64)
def _glyph(char: str, size: int) -> np.ndarray | None:
    if not OCRB_FONT.is_file():
        return None
    font = ImageFont.truetype(str(OCRB_FONT), size)
    img = Image.new("L", (size * 2, size * 2), 255)
    ImageDraw.Draw(img).text((size // 2, size // 4), char, font=font, fill=0)
    a = np.asarray(img)
    ys, xs = np.nonzero(a < 128)
    return a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


@lru_cache(maxsize=32)
def chevron_template(cap_height: int) -> np.ndarray | None:
    """The OCR-B '<' (binary, 3 px white margin) at the scale where capitals are
    `cap_height` px tall; None without the OCR-B font."""
    ref = _glyph("A", 100)
    if ref is None:
        return None
    glyph = _glyph("<", max(8, round(cap_height * 100 / ref.shape[0])))
    _, binary = cv2.threshold(glyph, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return cv2.copyMakeBorder(binary, 3, 3, 3, 3, cv2.BORDER_CONSTANT, value=255)


def cap_height(binary: np.ndarray) -> float | None:
    """Typical capital height of the text in a binary image (median of the taller half of the
    ink components)."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(255 - binary, connectivity=8)
    heights = sorted(int(s[3]) for s in stats[1:] if s[4] > 30 and 8 < s[3] < 120)
    if len(heights) < 10:
        return None
    return float(np.median(heights[len(heights) // 2:]))


def find_chevrons(binary: np.ndarray, cap: float) -> list[tuple[float, float, int, int]]:
    """Centres and size (cx, cy, w, h) of the '<' glyphs in a binary MRZ image."""
    template = chevron_template(round(cap))
    if template is None or template.shape[0] >= binary.shape[0] \
            or template.shape[1] >= binary.shape[1]:
        return []
    scores = cv2.matchTemplate(binary, template, cv2.TM_CCOEFF_NORMED)
    th, tw = template.shape
    top = np.sort(scores.ravel())[-2000:]
    # The MRZ holds many fillers: the threshold follows the best matches (blur lowers them all).
    threshold = float(np.clip(0.85 * np.median(top[-400:]), 0.5, 0.62))
    found = []
    work = scores.copy()
    while len(found) < 90:
        _, best, _, (x, y) = cv2.minMaxLoc(work)
        if best < threshold:
            break
        found.append((x + tw / 2, y + th / 2, tw - 6, th - 6))
        work[max(0, y - th // 2):y + th // 2 + 1, max(0, x - int(tw * 0.9)):x + int(tw * 0.9) + 1] = -1
    return found


def _lines_of(items: list[tuple[float, object]], cap: float) -> list[list[object]]:
    """Group (y, item) pairs into text lines (a gap of more than 0.6 cap height splits)."""
    groups: list[list[tuple[float, object]]] = []
    for y, item in sorted(items, key=lambda t: t[0]):
        if groups and y - groups[-1][-1][0] <= 0.6 * cap:
            groups[-1].append((y, item))
        else:
            groups.append([(y, item)])
    return [[item for _, item in g] for g in groups]


def ocr_mrz_columns(band: np.ndarray, *, timeout: float = MRZ_TIMEOUT) -> list[str]:
    """MRZ lines read with the fillers located by template matching (see above); unknown
    columns are '?'. Returns [] when the band does not look like an MRZ."""
    gray = band if band.ndim == 2 else cv2.cvtColor(band, cv2.COLOR_BGR2GRAY)
    binary = binarize(gray)
    cap = cap_height(binary)
    if cap is None:
        return []
    if abs(cap - MRZ_CHAR_HEIGHT) > 6:  # bring capitals to the size Tesseract reads best
        scale = MRZ_CHAR_HEIGHT / cap
        gray = cv2.resize(gray, None, fx=scale, fy=scale,
                          interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        binary = binarize(gray)
        cap = cap_height(binary) or MRZ_CHAR_HEIGHT
    chevrons = find_chevrons(binary, cap)
    erased = binary.copy()
    for cx, cy, w, h in chevrons:
        x0, y0 = int(cx - w / 2) - 2, int(cy - h / 2) - 2
        erased[max(0, y0):y0 + h + 4, max(0, x0):x0 + w + 4] = 255
    erased = cv2.copyMakeBorder(erased, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255)
    config = (f"--psm 6 --oem 1 -c tessedit_char_whitelist={MRZ_WHITELIST[:-1]} "
              "-c load_system_dawg=0 -c load_freq_dawg=0")
    data = _run(erased, lang="eng", config=config, timeout=timeout, data=True)
    items: list[tuple[float, object]] = []
    for i, text in enumerate(data["text"]):
        text = re.sub(r"[^A-Z0-9]", "", text.upper())
        if text:
            left, width = data["left"][i] - 20, data["width"][i]
            items.append((data["top"][i] - 20 + data["height"][i] / 2,
                          ("word", text, left, left + width)))
    items += [(cy, ("chevron", cx)) for cx, cy, _, _ in chevrons]
    lines = [line for line in _lines_of(items, cap) if len(line) >= 2]
    pitch = _pitch(lines, cap)
    return [_columns(line, pitch) for line in lines]


def _pitch(lines: list[list[object]], cap: float) -> float:
    """Column width: from neighbouring fillers (exactly one column apart), else from a line's
    width (30 columns)."""
    diffs = []
    for line in lines:
        xs = sorted(item[1] for item in line if item[0] == "chevron")
        diffs += [b - a for a, b in itertools.pairwise(xs) if 0.6 * cap < b - a < 1.3 * cap]
    if len(diffs) >= 3:
        return float(np.median(diffs))
    spans = []
    for line in lines:
        lefts = [i[2] if i[0] == "word" else i[1] for i in line]
        rights = [i[3] if i[0] == "word" else i[1] for i in line]
        spans.append((max(rights) - min(lefts)) / MRZ_COLUMNS)
    return max(spans) if spans else 0.9 * cap


def _origin(line: list[object], pitch: float) -> float:
    """Left edge of column 0: from the fillers (centred in their columns) when there are any,
    else from the leftmost word."""
    lefts = [i[2] for i in line if i[0] == "word"]
    chevrons = [i[1] for i in line if i[0] == "chevron"]
    x0 = (min(lefts) - 0.15 * pitch) if lefts else min(chevrons) - 0.5 * pitch
    for _ in range(2):
        if not chevrons:
            break
        x0 = float(np.median([cx - (round((cx - x0) / pitch - 0.5) + 0.5) * pitch
                              for cx in chevrons]))
    return x0


def _columns(line: list[object], pitch: float) -> str:
    """One MRZ line: every filler in its column, and each word's characters in the non-filler
    columns the word covers ('?' where the counts disagree)."""
    x0 = _origin(line, pitch)
    cells = ["?"] * MRZ_COLUMNS
    for item in line:
        if item[0] == "chevron":
            k = round((item[1] - x0) / pitch - 0.5)
            if 0 <= k < MRZ_COLUMNS:
                cells[k] = "<"
    for item in sorted((i for i in line if i[0] == "word"), key=lambda i: i[2]):
        _, text, left, right = item
        first = max(0, int((left - x0) // pitch))
        last = min(MRZ_COLUMNS - 1, int((right - x0) // pitch))
        free = [k for k in range(first, last + 1) if cells[k] != "<"]
        if len(free) == len(text):
            for k, char in zip(free, text, strict=True):
                cells[k] = char
        elif free:  # Tesseract dropped or added characters: spread them, the checks decide
            for j, char in enumerate(text):
                k = free[min(len(free) - 1, round(j * len(free) / len(text)))]
                if cells[k] == "?":
                    cells[k] = char
    return "".join(cells)
