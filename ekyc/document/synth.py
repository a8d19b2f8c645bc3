"""Synthetic Vietnamese chip ID cards (CCCD 2021 style) photographed as by a phone, with
forgeries, for testing and measuring the document reader.

    uv run python -m ekyc.document.synth OUT_DIR --n 200 --forgeries 50 --seed 1

`make_card(citizen, variation=..., forgery=..., seed=...)` returns the front and back JPEGs and a
`truth` dict; `generate_set` writes a set with `manifest.json`. Everything is deterministic in
the seed. The layout is the canonical card of `ekyc.document.imaging` (regions the reader
crops). The emblem is a plain drawn shape (no copyrighted art); portraits come from the
faces-dev test data (`EKYC_TEST_DATA`, default ../shared/data), a drawn silhouette without it.

Variations (what a phone photo does): blur, small and large rotation, whole-image 90/180/270
turns (also via EXIF), glare, perspective, JPEG compression, low light, noise, a combination
("phone") and the card partly out of frame (the quality gate must refuse it).

Forgeries: the QR and the MRZ disagree (number, name or date of birth), a wrong MRZ check digit,
an ID number inconsistent with the date of birth or sex (consistently on every source), an
edited printed field, and a swapped portrait (another person's face on an otherwise genuine
card). Only a comparison with the population register's portrait of the number can see a
swapped portrait: `generate_set` copies each citizen's register portrait into
`DIR/register/<national_id>.jpg` (the manifest row's `register_portrait`), and for a swapped
portrait that stays the TRUE citizen's. Swaps are between different faces-dev identities of the
same group (`east_southeast_asian` or `other`: a forger picks a look-alike), and half of them
are between East/Southeast Asian faces, the hard case for the dlib model (DOMAIN.md section
5). Without the faces data there are no portraits to compare: a swapped portrait's truth then
says `needs_stage: "face"` and evaluations report it apart.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import qrcode
from PIL import Image, ImageDraw, ImageFont

from ekyc.document.imaging import BACK_REGIONS, CARD_H, CARD_W, FRONT_REGIONS
from ekyc.document.mrz import compose_vn_td1, transliterate
from ekyc.document.reader import distance

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
OCRB_FONT = Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf")

VARIATIONS = ("none", "blur", "rotation", "rotation_large", "rot90", "rot180", "rot270",
              "exif_rotated", "glare", "perspective", "jpeg", "low_light", "noise", "phone",
              "out_of_frame", "scan")
# Share of each variation in a generated set (the acceptance set): realistic phone photos.
# Cards partly out of frame are added on top as separate "quality_gate" cases (the gate must
# refuse them, so they measure the gate, not the reading).
SET_WEIGHTS = {"none": 6, "blur": 10, "rotation": 9, "rotation_large": 8, "rot90": 4,
               "rot180": 5, "rot270": 3, "exif_rotated": 3, "glare": 10, "perspective": 10,
               "jpeg": 9, "low_light": 7, "noise": 6, "phone": 10}
FORGERIES = ("qr_mrz_number", "qr_mrz_name", "qr_mrz_dob", "mrz_check_digit",
             "id_dob_inconsistent", "printed_field_edited", "swapped_portrait")
# Forgeries the document stage can only detect with the register's portrait; without one (no
# faces data) they are left to the face stage and not counted against the document stage.
NEEDS_REGISTER_PORTRAIT = {"swapped_portrait": "face"}
ASIAN = "east_southeast_asian"
# What the document reader is expected to report for each forgery (any one of the codes).
EXPECTED_CODES = {
    "qr_mrz_number": ("qr_mrz_id_mismatch",),
    "qr_mrz_name": ("qr_mrz_name_mismatch",),
    "qr_mrz_dob": ("qr_mrz_birth_date_mismatch",),
    "mrz_check_digit": ("mrz_check_digit",),
    "id_dob_inconsistent": ("id_birth_year_mismatch", "id_century_mismatch", "id_sex_mismatch"),
    "printed_field_edited": ("printed_id_mismatch", "printed_name_mismatch",
                             "printed_birth_date_mismatch"),
    "swapped_portrait": ("portrait_register_mismatch", "portrait_no_face"),
}


@dataclass(frozen=True)
class CardData:
    """What one source (printed text, QR or MRZ) of a card says."""

    national_id: str
    full_name: str
    family_name: str
    given_name: str
    birth: date
    sex: str
    hometown: str
    residence: str
    issue_date: date
    expiry: date | None
    old_id: str


# --- drawing helpers -------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONT_DIR / name), size)


@lru_cache(maxsize=4)
def _ocrb(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(OCRB_FONT), size)


def _fit(draw: ImageDraw.ImageDraw, text: str, size: int, width: int, bold: bool) -> ImageFont:
    """The largest font <= size whose rendering of `text` fits `width` pixels."""
    while size > 10 and draw.textlength(text, font=_font(size, bold)) > width:
        size -= 1
    return _font(size, bold)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not current:
            current = trial
        else:
            lines.append(current)
            current = word
    return lines + [current] if current else lines


def _guilloche(img: Image.Image, rng: random.Random, colours: list[tuple[int, int, int]]) -> None:
    """Fine security-print-like wave lines in pale colours."""
    draw = ImageDraw.Draw(img)
    w, h = img.size
    xs = np.linspace(0, w, 180)
    for i in range(26):
        amp, freq = rng.uniform(6, 22), rng.uniform(1.5, 4.5)
        phase, base = rng.uniform(0, 6.3), h * i / 26
        ys = base + amp * np.sin(xs / w * freq * 2 * math.pi + phase)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=colours[i % len(colours)],
                  width=1)
    cx, cy = w * 0.55, h * 0.55  # a faint rosette in the middle, like the drum watermark
    for r in range(40, 230, 9):
        draw.ellipse((cx - r, cy - r * 0.8, cx + r, cy + r * 0.8), outline=colours[0], width=1)


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * 0.4
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return pts


def _emblem(draw: ImageDraw.ImageDraw) -> None:
    """A plain round emblem: golden ring, red disc, yellow star (not the real artwork)."""
    x0, y0, x1, y1 = FRONT_REGIONS["emblem"]
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(214, 170, 60))
    for k in range(24):  # cog teeth
        a = k * math.pi / 12
        draw.ellipse((cx + (r - 6) * math.cos(a) - 5, cy + (r - 6) * math.sin(a) - 5,
                      cx + (r - 6) * math.cos(a) + 5, cy + (r - 6) * math.sin(a) + 5),
                     fill=(190, 140, 40))
    draw.ellipse((cx - r * 0.78, cy - r * 0.78, cx + r * 0.78, cy + r * 0.78), fill=(200, 30, 35))
    draw.polygon(_star(cx, cy - 4, r * 0.55), fill=(250, 215, 60))


def _qr_image(payload: str, size: int) -> Image.Image:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, border=0, box_size=1)
    qr.add_data(payload.encode("utf-8"))
    qr.make(fit=True)
    matrix = np.array(qr.get_matrix(), dtype=np.uint8)
    img = Image.fromarray(np.where(matrix > 0, 20, 250).astype(np.uint8))
    return img.resize((size, size), Image.Resampling.NEAREST).convert("RGB")


def _portrait(file: Path | None, size: tuple[int, int]) -> Image.Image:
    """The card portrait: the central face area of a faces-dev image, or a drawn silhouette."""
    w, h = size
    if file is not None and file.is_file():
        img = Image.open(file).convert("RGB")
        iw, ih = img.size
        cw = iw * 0.6  # LFW deep-funneled: the face is centred
        ch = cw * h / w
        box = (iw / 2 - cw / 2, ih * 0.5 - ch * 0.52, iw / 2 + cw / 2, ih * 0.5 + ch * 0.48)
        return img.crop(tuple(int(v) for v in box)).resize(size, Image.Resampling.LANCZOS)
    img = Image.new("RGB", size, (205, 220, 235))
    d = ImageDraw.Draw(img)
    d.ellipse((w * 0.3, h * 0.15, w * 0.7, h * 0.55), fill=(120, 110, 105))
    d.ellipse((w * 0.1, h * 0.6, w * 0.9, h * 1.3), fill=(70, 75, 90))
    return img


def _date(d: date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else "Không thời hạn"


# --- the two sides ---------------------------------------------------------------------------
def qr_text(data: CardData) -> str:
    """The 2021 QR payload: ID|oldID|name|DDMMYYYY|Nam/Nữ|address|issueDDMMYYYY."""
    return "|".join([data.national_id, data.old_id, data.full_name, data.birth.strftime("%d%m%Y"),
                     "Nam" if data.sex == "M" else "Nữ", data.residence,
                     data.issue_date.strftime("%d%m%Y")])


def render_front(printed: CardData, qr: CardData, portrait: Path | None,
                 rng: random.Random) -> Image.Image:
    """The front of the card (canonical size, RGB)."""
    img = Image.new("RGB", (CARD_W, CARD_H), (226, 231, 226))
    _guilloche(img, rng, [(206, 220, 214), (218, 208, 198), (204, 214, 228)])
    d = ImageDraw.Draw(img)
    _emblem(d)
    centre = 485
    heads = [("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 23, True, (20, 20, 20), 24),
             ("SOCIALIST REPUBLIC OF VIET NAM", 15, False, (40, 40, 40), 56),
             ("Độc lập - Tự do - Hạnh phúc", 19, True, (20, 20, 20), 80),
             ("Independence - Freedom - Happiness", 14, False, (40, 40, 40), 106),
             ("CĂN CƯỚC CÔNG DÂN", 36, True, (200, 25, 30), 128),
             ("Citizen Identity Card", 17, False, (40, 40, 40), 172)]
    for text, size, bold, colour, y in heads:
        font = _font(size, bold)
        d.text((centre - d.textlength(text, font=font) / 2, y), text, font=font, fill=colour)
    qx0, qy0, qx1, _ = FRONT_REGIONS["qr"]
    img.paste(_qr_image(qr_text(qr), qx1 - qx0), (qx0, qy0))
    px0, py0, px1, py1 = FRONT_REGIONS["portrait"]
    img.paste(_portrait(portrait, (px1 - px0, py1 - py0)), (px0, py0))
    label, value = _font(15), (15, 15, 20)
    ink = (30, 30, 35)
    d.text((285, 218), "Số / No.:", font=_font(18), fill=ink)
    x0, y0, x1, _ = FRONT_REGIONS["id_number"]
    d.text((x0 + 12, y0 + 6), printed.national_id, font=_font(33, True), fill=value)
    d.text((285, 262), "Họ và tên / Full name:", font=label, fill=ink)
    name = printed.full_name.upper()
    x0, y0, x1, _ = FRONT_REGIONS["full_name"]
    d.text((x0 + 8, y0 + 4), name, font=_fit(d, name, 28, x1 - x0 - 16, True), fill=value)
    d.text((285, 335), "Ngày sinh / Date of birth:", font=label, fill=ink)
    x0, y0, _, _ = FRONT_REGIONS["birth_date"]
    d.text((x0 + 8, y0 + 4), _date(printed.birth), font=_font(23, True), fill=value)
    d.text((285, 371), "Giới tính / Sex:", font=label, fill=ink)
    x0, y0, _, _ = FRONT_REGIONS["sex"]
    d.text((x0 + 8, y0 + 4), "Nam" if printed.sex == "M" else "Nữ", font=_font(23, True),
           fill=value)
    d.text((600, 371), "Quốc tịch / Nationality:", font=label, fill=ink)
    d.text((795, 367), "Việt Nam", font=_font(23, True), fill=value)
    d.text((285, 404), "Quê quán / Place of origin:", font=label, fill=ink)
    x0, y0, x1, _ = FRONT_REGIONS["hometown"]
    d.text((x0 + 8, y0 + 4), printed.hometown,
           font=_fit(d, printed.hometown, 22, x1 - x0 - 16, True), fill=value)
    d.text((285, 468), "Nơi thường trú / Place of residence:", font=label, fill=ink)
    x0, y0, x1, _ = FRONT_REGIONS["residence"]
    lines = _wrap(d, printed.residence, _font(22, True), x1 - x0 - 16)[:2]
    for i, line in enumerate(lines):
        d.text((x0 + 8, y0 + 4 + 36 * i), line, font=_font(22, True), fill=value)
    d.text((40, 516), "Có giá trị đến:", font=_font(14), fill=ink)
    d.text((40, 536), "Date of expiry", font=_font(12), fill=ink)
    x0, y0, _, _ = FRONT_REGIONS["expiry_date"]
    d.text((x0 + 4, y0 + 4), _date(printed.expiry), font=_font(21, True), fill=value)
    return img


def _fingerprint(d: ImageDraw.ImageDraw, box: tuple[int, int, int, int], rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    d.rectangle(box, outline=(90, 90, 90), width=2)
    cx, cy = (x0 + x1) / 2 + rng.uniform(-8, 8), (y0 + y1) / 2 + rng.uniform(-8, 8)
    for r in range(6, 64, 5):
        wobble = rng.uniform(-2, 2)
        d.arc((cx - r - wobble, cy - r * 1.3, cx + r + wobble, cy + r * 1.3), start=rng.randint(0, 40),
              end=rng.randint(300, 360), fill=(95, 95, 100), width=2)


def render_back(printed: CardData, mrz_lines: list[str], rng: random.Random) -> Image.Image:
    """The back of the card (canonical size, RGB) with the MRZ in OCR-B."""
    img = Image.new("RGB", (CARD_W, CARD_H), (222, 227, 232))
    _guilloche(img, rng, [(206, 214, 224), (216, 212, 218)])
    d = ImageDraw.Draw(img)
    ink, label = (30, 30, 35), _font(15)
    d.text((30, 30), "Đặc điểm nhân dạng / Personal identification:", font=label, fill=ink)
    marks = rng.choice(["Nốt ruồi C: 2cm trên sau đuôi mắt phải", "Sẹo chấm C: 1cm dưới môi",
                        "Nốt ruồi C: 1cm dưới trước cánh mũi trái", "Sẹo chấm C: 2cm trên mày"])
    d.text((30, 56), marks, font=_font(17), fill=ink)
    d.text((30, 96), f"Ngày, tháng, năm / Date, month, year: {_date(printed.issue_date)}",
           font=label, fill=ink)
    d.text((30, 130), "CỤC TRƯỞNG CỤC CẢNH SÁT", font=_font(16, True), fill=ink)
    d.text((30, 152), "QUẢN LÝ HÀNH CHÍNH VỀ TRẬT TỰ XÃ HỘI", font=_font(16, True), fill=ink)
    d.text((30, 176), "DIRECTOR GENERAL OF THE POLICE DEPARTMENT", font=_font(12), fill=ink)
    d.text((30, 192), "FOR ADMINISTRATIVE MANAGEMENT OF SOCIAL ORDER", font=_font(12), fill=ink)
    d.ellipse((140, 215, 260, 335), outline=(205, 40, 45), width=4)  # seal
    d.ellipse((160, 235, 240, 315), outline=(205, 40, 45), width=2)
    d.polygon(_star(200, 275, 22), fill=(205, 40, 45))
    pts = [(120 + t * 6, 300 + 18 * math.sin(t / 2.2) + rng.uniform(-3, 3)) for t in range(40)]
    d.line(pts, fill=(20, 30, 120), width=3)  # signature
    d.text((110, 350), "Nguyễn Văn Bình", font=_font(18, True), fill=ink)  # fictional
    cx0, cy0, cx1, cy1 = BACK_REGIONS["chip"]
    d.rounded_rectangle((cx0, cy0, cx1, cy1), radius=12, fill=(212, 178, 90), outline=(150, 120, 50),
                        width=2)
    for k in (1, 2):
        d.line((cx0, cy0 + k * (cy1 - cy0) / 3, cx1, cy0 + k * (cy1 - cy0) / 3), fill=(150, 120, 50),
               width=2)
    d.line(((cx0 + cx1) / 2, cy0, (cx0 + cx1) / 2, cy1), fill=(150, 120, 50), width=2)
    for i, caption in enumerate(("Ngón trỏ trái", "Ngón trỏ phải")):
        x0 = 640 + i * 175
        _fingerprint(d, (x0, 30, x0 + 150, 230), rng)
        d.text((x0 + 10, 238), caption, font=_font(14), fill=ink)
        d.text((x0 + 10, 256), ("Left" if i == 0 else "Right") + " index finger", font=_font(11),
               fill=ink)
    y0 = BACK_REGIONS["mrz"][1]
    d.rectangle((0, y0 - 6, CARD_W, CARD_H), fill=(232, 235, 238))
    font = _ocrb(41)
    for i, line in enumerate(mrz_lines):
        d.text((48, y0 + 18 + 64 * i), line, font=font, fill=(18, 18, 22))
    return img


# --- forgeries -------------------------------------------------------------------------------
def _other_digit(rng: random.Random, digit: str) -> str:
    return str((int(digit) + rng.randint(1, 9)) % 10)


def _change_random_part(rng: random.Random, national_id: str) -> str:
    pos = rng.randint(6, 11)  # one of the RRRRRR digits: the structure stays consistent
    return national_id[:pos] + _other_digit(rng, national_id[pos]) + national_id[pos + 1:]


def _inconsistent_id(rng: random.Random, data: CardData) -> tuple[str, str]:
    nid, kind = data.national_id, rng.choice(["year", "century", "sex"])
    g = int(nid[3])
    if kind == "year":
        yy = (int(nid[4:6]) + rng.choice([-3, -2, -1, 1, 2, 3])) % 100
        return nid[:4] + f"{yy:02d}" + nid[6:], "year"
    if kind == "century":
        g2 = g + 2 if g < 2 else g - 2
        return nid[:3] + str(g2) + nid[4:], "century"
    return nid[:3] + str(g ^ 1) + nid[4:], "sex"


_DEFAULT_GIVEN = ["Lan", "Hùng", "Phương", "Tuấn", "Mai", "Dũng", "Hoa", "Nam", "Khoa", "Yến"]


def _renamed(rng: random.Random, data: CardData, pool: list[str]) -> CardData:
    """`data` with the last given name replaced by a clearly different one (also without
    diacritics, where the MRZ compares)."""
    parts = data.given_name.split()
    old = transliterate(parts[-1])
    choices = [g for g in pool if distance(transliterate(g), old) >= 2]
    given = " ".join(parts[:-1] + [rng.choice(choices)])
    return replace(data, given_name=given, full_name=f"{data.family_name} {given}")


def _edit_printed(rng: random.Random, data: CardData, pool: list[str]) -> tuple[CardData, str]:
    kind = rng.choice(["national_id", "full_name", "birth"])
    if kind == "national_id":
        return replace(data, national_id=_change_random_part(rng, data.national_id)), kind
    if kind == "birth":
        birth = data.birth + timedelta(days=rng.choice([-40, -11, -3, 3, 11, 40]))
        if birth.year != data.birth.year:
            birth = data.birth + timedelta(days=rng.choice([-3, 3]))
        return replace(data, birth=birth), kind
    return _renamed(rng, data, pool), kind


def _mrz_with_bad_check(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    which = rng.choice([(0, 14, "document_number"), (0, 29, "national_id"), (1, 6, "birth_date"),
                        (1, 14, "expiry_date"), (1, 29, "composite")])
    row, pos, name = which
    out = list(lines)
    out[row] = out[row][:pos] + _other_digit(rng, out[row][pos]) + out[row][pos + 1:]
    return out, name


# --- the photo -------------------------------------------------------------------------------
_BACKGROUNDS = [(70, 48, 35), (150, 110, 75), (58, 58, 62), (105, 62, 40), (45, 60, 100),
                (48, 85, 58), (120, 120, 128), (185, 170, 150), (30, 30, 32)]


def _background(rng: random.Random, nrng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = np.array(rng.choice(_BACKGROUNDS), dtype=np.float32)[::-1]  # RGB -> BGR
    low = cv2.resize(nrng.normal(0, 1, (6, 8)).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    grain = cv2.resize(nrng.normal(0, 1, (h // 4, w // 40)).astype(np.float32), (w, h))
    img = base[None, None, :] * (1 + 0.08 * low[..., None]) + 10 * grain[..., None]
    return np.clip(img, 0, 255)


def _corner_mask(w: int, h: int, radius: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.rectangle(mask, (radius, 0), (w - radius, h), 255, -1)
    cv2.rectangle(mask, (0, radius), (w, h - radius), 255, -1)
    for cx, cy in ((radius, radius), (w - radius, radius), (radius, h - radius),
                   (w - radius, h - radius)):
        cv2.circle(mask, (cx, cy), radius, 255, -1, lineType=cv2.LINE_AA)
    return mask


def _destination(rng: random.Random, variation: str, cw: float, canvas: tuple[int, int],
                 params: dict) -> np.ndarray:
    """Where the card's corners land in the photo."""
    w, h = canvas
    ch = cw / (CARD_W / CARD_H)
    angle = {"rotation": rng.uniform(2, 5), "rotation_large": rng.uniform(5, 10),
             "phone": rng.uniform(0, 4)}.get(variation, rng.uniform(0, 1.5))
    angle *= rng.choice([-1, 1])
    jitter = {"perspective": rng.uniform(0.05, 0.09), "phone": 0.03}.get(variation, 0.008)
    pts = np.array([[-cw / 2, -ch / 2], [cw / 2, -ch / 2], [cw / 2, ch / 2], [-cw / 2, ch / 2]])
    if variation == "perspective":  # a tilted camera: one edge shorter than the opposite one
        edge = rng.randrange(4)
        a, b = edge, (edge + 1) % 4
        for i in (a, b):
            pts[i] *= 1 - jitter
    pts += np.array([[rng.uniform(-1, 1) * jitter * cw * 0.3, rng.uniform(-1, 1) * jitter * ch * 0.3]
                     for _ in range(4)])
    rad = math.radians(angle)
    rot = np.array([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])
    pts = pts @ rot.T
    span = pts.max(axis=0) - pts.min(axis=0)
    free_x, free_y = max(0.0, w - span[0] - 60), max(0.0, h - span[1] - 60)
    centre = np.array([w / 2 + rng.uniform(-0.5, 0.5) * free_x,
                       h / 2 + rng.uniform(-0.5, 0.5) * free_y])
    if variation == "out_of_frame":  # push the card past one edge by 6-18 % of its size
        side = rng.randrange(4)
        frac = rng.uniform(0.06, 0.18)
        half = span / 2
        centre = np.array([w / 2, h / 2])
        if side == 0:
            centre[0] = half[0] - frac * span[0]
        elif side == 1:
            centre[0] = w - half[0] + frac * span[0]
        elif side == 2:
            centre[1] = half[1] - frac * span[1]
        else:
            centre[1] = h - half[1] + frac * span[1]
        params["outside_fraction"] = round(frac, 3)
    params["angle"] = round(angle, 2)
    return (pts + centre).astype(np.float32)


def _glare(img: np.ndarray, rng: random.Random, quad: np.ndarray, strength: float) -> None:
    h, w = img.shape[:2]
    cw = float(np.linalg.norm(quad[1] - quad[0]))
    u, v = rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.85)
    top = quad[0] + (quad[1] - quad[0]) * u
    bottom = quad[3] + (quad[2] - quad[3]) * u
    cx, cy = top + (bottom - top) * v
    rx, ry = cw * rng.uniform(0.05, 0.12), cw * rng.uniform(0.035, 0.08)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))
    img += (strength * 255 * blob)[..., None]


def photograph(front: Image.Image | None, back: Image.Image | None, variation: str,
               seed: int) -> tuple[list[bytes], dict]:
    """JPEG "photos" of the given card sides under `variation`; returns them and the params."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    params: dict = {"variation": variation}
    out = []
    for side in (front, back):
        if side is None:
            out.append(b"")
            continue
        out.append(_photo_one(side, variation, rng, nrng, params))
    return out, params


def _photo_one(card: Image.Image, variation: str, rng: random.Random, nrng: np.random.Generator,
               params: dict) -> bytes:
    bgr = cv2.cvtColor(np.asarray(card), cv2.COLOR_RGB2BGR)
    if variation == "scan":  # a flatbed scan: the card alone, straight, little noise
        return _jpeg(bgr.astype(np.float32), 92, nrng, 1.0, None)
    w, h = 1280, 960
    cw = rng.uniform(640, 1000)
    if variation == "phone":
        cw = rng.uniform(600, 900)
    params["card_width"] = round(cw)
    quad = _destination(rng, variation, cw, (w, h), params)
    src = np.array([[0, 0], [CARD_W, 0], [CARD_W, CARD_H], [0, CARD_H]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, quad)
    canvas = _background(rng, nrng, w, h)
    # Soft shadow under the card.
    shadow = cv2.warpPerspective(_corner_mask(CARD_W, CARD_H, 30), matrix, (w, h))
    shadow = cv2.GaussianBlur(shadow.astype(np.float32) / 255, (0, 0), 9)
    shift = np.float32([[1, 0, 7], [0, 1, 9]])
    canvas *= 1 - 0.45 * cv2.warpAffine(shadow, shift, (w, h))[..., None]
    warped = cv2.warpPerspective(bgr, matrix, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(_corner_mask(CARD_W, CARD_H, 30), matrix, (w, h),
                                flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255
    img = canvas * (1 - alpha) + warped.astype(np.float32) * alpha
    # Uneven light: a broad gradient over the photo.
    gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    gy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    a, b = rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06)
    img *= (rng.uniform(0.9, 1.03) + a * gx + b * gy)[..., None]
    if variation == "low_light":
        level = rng.uniform(0.3, 0.5)
        img = 255 * (img / 255) ** rng.uniform(1.1, 1.4) * level
        img *= np.array([0.85, 0.95, 1.1], np.float32)  # warm indoor light
        params["light"] = round(level, 2)
    if variation in ("glare", "phone") and (variation == "glare" or rng.random() < 0.5):
        strength = rng.uniform(0.5, 1.0) if variation == "glare" else rng.uniform(0.3, 0.6)
        _glare(img, rng, quad, strength)
        params["glare"] = round(strength, 2)
    sigma = {"blur": rng.uniform(1.2, 2.2), "phone": rng.uniform(0.8, 1.4)}.get(
        variation, rng.uniform(0.3, 0.7))
    if variation == "blur" and rng.random() < 0.4:  # hand shake: motion blur
        length = rng.randint(5, 8)
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1 / length
        rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        img = cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
        params["motion_blur"] = length
    else:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
        params["blur_sigma"] = round(sigma, 2)
    noise = {"noise": rng.uniform(6, 12), "low_light": rng.uniform(4, 8),
             "phone": rng.uniform(3, 6)}.get(variation, rng.uniform(1, 3))
    quality = {"jpeg": rng.randint(20, 40), "phone": rng.randint(55, 75)}.get(
        variation, rng.randint(75, 92))
    params["noise"], params["jpeg_quality"] = round(noise, 1), quality
    turn = {"rot90": 90, "rot180": 180, "rot270": 270}.get(variation)
    exif = None
    if variation == "exif_rotated":  # the sensor's landscape pixels, EXIF says turn 90 clockwise
        turn, exif = 270, 6
    return _jpeg(img, quality, nrng, noise, turn, exif)


def _jpeg(img: np.ndarray, quality: int, nrng: np.random.Generator, noise: float,
          turn: int | None, exif: int | None = None) -> bytes:
    img = img + nrng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if turn:
        out = np.ascontiguousarray(np.rot90(out, k=turn // 90))  # counter-clockwise turns
    pil = Image.fromarray(cv2.cvtColor(out, cv2.COLOR_BGR2RGB))
    buf = io.BytesIO()
    kwargs = {}
    if exif is not None:
        tags = Image.Exif()
        tags[0x0112] = exif
        kwargs["exif"] = tags.tobytes()
    pil.save(buf, "JPEG", quality=quality, **kwargs)
    return buf.getvalue()


# --- cards and sets --------------------------------------------------------------------------
def _data(citizen) -> CardData:
    return CardData(national_id=citizen.national_id, full_name=citizen.full_name,
                    family_name=citizen.family_name, given_name=citizen.given_name,
                    birth=citizen.date_of_birth, sex=citizen.sex, hometown=citizen.hometown,
                    residence=citizen.residence, issue_date=citizen.card_issue_date,
                    expiry=citizen.card_expiry_date, old_id=citizen.old_id)


@lru_cache(maxsize=4)
def _groups(folder: str) -> dict[str, str]:
    rows = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    return {r["identity"]: r.get("group", "other") for r in rows}


def face_group(citizen) -> str | None:
    """The faces-dev group (`east_southeast_asian` | `other`) of the face the register holds
    for `citizen`, or None (no portrait, or no faces data)."""
    try:
        from register.seed import faces_dir, portrait_identity
    except ImportError:
        return None
    identity, folder = portrait_identity(citizen), faces_dir()
    if identity is None or folder is None:
        return None
    return _groups(str(folder)).get(identity)


def register_portrait_file(citizen) -> Path | None:
    """The register's portrait of `citizen` (`register.seed.portrait_path`), or None."""
    try:
        from register.seed import portrait_path
    except ImportError:
        return None
    return portrait_path(citizen)


def _card_portrait(citizen, rng: random.Random, swap_with=None) -> tuple[Path | None, dict]:
    """A non-register image of the citizen's faces-dev identity (or of `swap_with`'s)."""
    try:
        from register.seed import faces_dir, identity_images, portrait_identity
    except ImportError:  # the register package is not installed: silhouettes only
        return None, {"portrait": None}
    who = swap_with or citizen
    identity = portrait_identity(who)
    folder = faces_dir()
    if identity is None or folder is None:
        return None, {"portrait": None}
    images = identity_images(identity)
    choices = images[1:] or images
    file = rng.choice(choices)
    return folder / file, {"portrait": file, "portrait_identity": identity,
                           "portrait_group": _groups(str(folder)).get(identity),
                           "portrait_is_register_image": file == who.portrait_file}


def make_card(citizen, *, variation: str | None = None, forgery: str | None = None,
              seed: int = 0, swap_with=None,
              name_pool: list[str] | None = None) -> tuple[bytes, bytes, dict]:
    """Render and "photograph" one card of `citizen` (a `register.seed.Citizen`).

    `variation` is one of `VARIATIONS` (None = "none"), `forgery` one of `FORGERIES` (None =
    genuine). A swapped portrait needs `swap_with`: another citizen, whose face (of another
    faces-dev identity) is printed on `citizen`'s card. Returns (front JPEG, back JPEG, truth
    dict).
    """
    variation = variation or "none"
    if variation not in VARIATIONS:
        raise ValueError(f"unknown variation {variation!r}")
    if forgery is not None and forgery not in FORGERIES:
        raise ValueError(f"unknown forgery {forgery!r}")
    rng = random.Random(seed)
    base = _data(citizen)
    printed = qr = mrz_data = base
    detail: dict = {}
    if forgery == "qr_mrz_number":
        qr = replace(base, national_id=_change_random_part(rng, base.national_id))
    elif forgery == "qr_mrz_name":
        qr = _renamed(rng, base, name_pool or _DEFAULT_GIVEN)
    elif forgery == "qr_mrz_dob":
        shift = rng.choice([-60, -20, -5, 5, 20, 60])
        birth = base.birth + timedelta(days=shift)
        if birth.year != base.birth.year:
            birth = base.birth + timedelta(days=-shift)
        qr = replace(base, birth=birth)
    elif forgery == "id_dob_inconsistent":
        nid, detail["kind"] = _inconsistent_id(rng, base)
        printed = qr = mrz_data = replace(base, national_id=nid)
    elif forgery == "printed_field_edited":
        printed, detail["field"] = _edit_printed(rng, base, name_pool or _DEFAULT_GIVEN)
    mrz_lines = compose_vn_td1(national_id=mrz_data.national_id, birth=mrz_data.birth,
                               sex=mrz_data.sex, expiry=mrz_data.expiry,
                               surname=mrz_data.family_name, given=mrz_data.given_name)
    if forgery == "mrz_check_digit":
        mrz_lines, detail["check"] = _mrz_with_bad_check(rng, mrz_lines)
    if forgery == "swapped_portrait":
        if swap_with is None or swap_with.national_id == citizen.national_id:
            raise ValueError("a swapped portrait needs swap_with (another citizen)")
        if citizen.portrait_file and swap_with.portrait_file and \
                citizen.portrait_file.split("/")[0] == swap_with.portrait_file.split("/")[0]:
            raise ValueError("a swapped portrait needs another person's face")
    portrait, portrait_info = _card_portrait(
        citizen, rng, swap_with if forgery == "swapped_portrait" else None)
    checkable = register_portrait_file(citizen) is not None
    front_img = render_front(printed, qr, portrait, rng)
    back_img = render_back(printed, mrz_lines, rng)
    (front, back), params = photograph(front_img, back_img, variation, rng.randrange(2**31))
    truth = {
        "national_id": mrz_data.national_id,
        "citizen_national_id": citizen.national_id,
        "genuine": forgery is None,
        "forgery": forgery,
        "forgery_detail": detail,
        "expected_codes": list(EXPECTED_CODES.get(forgery, ())) if forgery else [],
        "needs_stage": None if checkable else NEEDS_REGISTER_PORTRAIT.get(forgery),
        "citizen_group": face_group(citizen),
        "variation": variation,
        "variation_params": params,
        "qr_payload": qr_text(qr),
        "mrz": mrz_lines,
        "full_name": printed.full_name,
        "date_of_birth": printed.birth.isoformat(),
        "sex": printed.sex,
        **portrait_info,
    }
    return front, back, truth


def _assign_variations(rng: random.Random, n: int) -> list[str]:
    names = list(SET_WEIGHTS)
    weights = [SET_WEIGHTS[v] for v in names]
    total = sum(weights)
    counts = [math.floor(n * w / total) for w in weights]
    for i in sorted(range(len(names)), key=lambda i: -(n * weights[i] / total - counts[i])):
        if sum(counts) >= n:
            break
        counts[i] += 1
    out = [v for v, c in zip(names, counts, strict=True) for _ in range(c)]
    rng.shuffle(out)
    return out


def _swap_partner(rng: random.Random, citizen, candidates: list, groups: dict[str, str | None]):
    """Another citizen whose face is of another identity in the same faces-dev group (any
    other citizen without the faces data). `groups`: national_id -> face group."""
    mine = citizen.portrait_file.split("/")[0] if citizen.portrait_file else None
    others = [c for c in candidates if c.national_id != citizen.national_id
              and (mine is None or not c.portrait_file or c.portrait_file.split("/")[0] != mine)]
    group = groups.get(citizen.national_id)
    same = [c for c in others if group is not None and groups.get(c.national_id) == group]
    return rng.choice(same or others)


def generate_set(out_dir: str | Path, n: int, forgeries: int, seed: int,
                 reference_date: date | None = None,
                 variations: list[str] | None = None,
                 gate_cases: int | None = None) -> list[dict]:
    """Write `n` cards (of which `forgeries` forged, the forgery types in turn) to `out_dir`
    with `manifest.json`: {"seed", "reference_date", "cards": [rows]}; each row has front,
    back, national_id, genuine, forgery, variation, purpose, `register_portrait` and the truth
    details. Variations follow `SET_WEIGHTS` unless `variations` (taken in turn) is given.
    `gate_cases` genuine cards partly out of frame (default n // 100) are added after the n,
    with purpose "quality_gate" (the capture gate must refuse them). Returns the rows.

    With the faces data, cards are made only for citizens who have a register portrait (so
    every card can be checked against it; citizens repeat when n exceeds them), and each
    citizen's register portrait is copied to `register/<national_id>.jpg`. A row's
    `register_portrait` (relative path) is what the register returns for the card's number:
    the citizen's portrait, absent when the citizen has none or the card's number is not the
    citizen's (the `id_dob_inconsistent` forgery prints a number the register does not know).
    A swapped portrait shows another identity of the same group; every second one is moved
    to an East/Southeast Asian citizen (the hard case; one not otherwise in the set while
    there are some)."""
    from register.seed import REFERENCE_DATE, synthetic_citizens

    if not 0 <= forgeries <= n:
        raise ValueError("need 0 <= forgeries <= n")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    people = [c for c in synthetic_citizens(max(400, n * 2)) if c.status == "alive"]
    with_face = [c for c in people if register_portrait_file(c) is not None]
    pool = with_face or people
    groups = {c.national_id: face_group(c) for c in pool}
    chosen = rng.sample(pool, n) if len(pool) >= n else [pool[i % len(pool)] for i in range(n)]
    given_pool = sorted({c.given_name.split()[-1] for c in people})
    forged = sorted(rng.sample(range(n), forgeries))
    kinds = {i: FORGERIES[k % len(FORGERIES)] for k, i in enumerate(forged)}
    used = {c.national_id for c in chosen}
    asian = [c for c in with_face if groups[c.national_id] == ASIAN]
    spare_asian = [c for c in asian if c.national_id not in used]
    swaps = [i for i in forged if kinds[i] == "swapped_portrait"]
    for j, i in enumerate(swaps):
        if j % 2 == 0 and groups[chosen[i].national_id] != ASIAN and asian:
            # An unused citizen while there are some, else one who also has a genuine card.
            chosen[i] = spare_asian.pop(rng.randrange(len(spare_asian))) if spare_asian \
                else rng.choice(asian)
    if variations:
        unknown = set(variations) - set(VARIATIONS)
        if unknown:
            raise ValueError(f"unknown variations {sorted(unknown)}")
        variations = [variations[i % len(variations)] for i in range(n)]
    else:
        variations = _assign_variations(rng, n)
    gate_cases = n // 100 if gate_cases is None else gate_cases
    extra = rng.sample(pool, gate_cases) if len(pool) >= gate_cases else pool[:gate_cases]
    chosen = list(chosen) + list(extra)
    variations = list(variations) + ["out_of_frame"] * len(extra)
    register_dir = out / "register"
    rows = []
    for i, citizen in enumerate(chosen):
        forgery = kinds.get(i) if i < n else None
        swap = _swap_partner(rng, citizen, pool, groups)
        front, back, truth = make_card(citizen, variation=variations[i], forgery=forgery,
                                       seed=rng.randrange(2**31), swap_with=swap,
                                       name_pool=given_pool)
        if forgery == "swapped_portrait":
            truth["swap_group"] = groups.get(swap.national_id)
        stem = f"card{i:04d}"
        (out / f"{stem}_front.jpg").write_bytes(front)
        (out / f"{stem}_back.jpg").write_bytes(back)
        row = {"front": f"{stem}_front.jpg", "back": f"{stem}_back.jpg",
               "purpose": "quality_gate" if i >= n else "reading", **truth}
        source = register_portrait_file(citizen)
        if source is not None and truth["national_id"] == citizen.national_id:
            register_dir.mkdir(exist_ok=True)
            target = register_dir / f"{citizen.national_id}.jpg"
            if not target.is_file():
                target.write_bytes(source.read_bytes())
            row["register_portrait"] = f"register/{target.name}"
        rows.append(row)
    manifest = {"seed": seed, "n": n, "forgeries": forgeries, "gate_cases": gate_cases,
                "reference_date": (reference_date or REFERENCE_DATE).isoformat(), "cards": rows}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                                       encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> int:
    """`python -m ekyc.document.synth OUT_DIR --n 200 --forgeries 50 --seed 1`."""
    parser = argparse.ArgumentParser(prog="python -m ekyc.document.synth",
                                     description="Generate synthetic chip ID card photos.")
    parser.add_argument("out_dir")
    parser.add_argument("--n", type=int, default=200, help="number of cards (default 200)")
    parser.add_argument("--forgeries", type=int, default=50, help="how many are forged")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gate-cases", type=int, default=None,
                        help="extra cards partly out of frame for the quality gate "
                             "(default n // 100)")
    args = parser.parse_args(argv)
    rows = generate_set(args.out_dir, args.n, args.forgeries, args.seed,
                        gate_cases=args.gate_cases)
    print(f"wrote {len(rows)} cards ({sum(not r['genuine'] for r in rows)} forged) and "
          f"manifest.json to {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
