"""Generated selfie bursts from real faces-dev photos, genuine and attacks, for tests and
`ekyc.liveness.evaluate`.

    from ekyc.liveness import synth
    frames, stamps = synth.genuine(photo, ["turn_left", "blink"], seed=1)
    frames, stamps = synth.attack("card", photo, ["turn_left", "blink"], seed=1, other=photo2)

A burst follows `ekyc/static/ekyc/capture.js`: three frames looking straight, then `perStep`
frames per head movement 350 ms apart and 4 frames 130 ms apart for a blink, a pause between
steps, at most 13 frames; JPEG, with client timestamps.

Head turns and looking up rotate a generic 3-D head fitted to the photo's 68 landmarks (an
ellipsoid with the features' relief, a triangle mesh) about its vertical (turns) or horizontal
(look up) axis, by the angles a citizen asked to turn turns (`TURN_PEAK`, `LOOK_UP_PEAK`), with
a nose flatter or more prominent than the generic one (`NOSE_SCALE`): the nose moves against
the eyes and mouth, the far cheek narrows and the background stays put. (An earlier 2.5-D
per-pixel warp with an exaggerated nose smeared the nose over the cheek on some faces, which
dlib then read as no turn or the opposite one.) Blinks are an eye-region edit: the eye opening
is covered with lid skin interpolated from the skin just above and below it and a lash line is
drawn where the lids meet (one or two frames shut, sometimes one half shut next to them). Every frame gets mild
shake (a small similarity transform), brightness and noise jitter and its own JPEG quality.

Attacks (`ATTACKS`): `still` (one photo sent again and again, jittered), `card` (the portrait
printed on a card, or the synthetic ID card of `ekyc.document.synth`, held up and tilted the way
the challenge asks: a flat picture), `reordered` (a genuine burst whose action steps were put
in another order, timestamps still increasing), `other_session` (a genuine burst answering a
different challenge), `face_swap` (another person during one of the steps).
"""

from __future__ import annotations

import io
import math
import random

import cv2
import numpy as np
from PIL import Image

from ekyc.face.frames import analyse
from ekyc.face.matcher import load_rgb

ACTIONS = ("turn_left", "turn_right", "blink", "look_up")
ATTACKS = ("still", "card", "reordered", "other_session", "face_swap")
SIDE = 480  # frames are this size (capture.js sends up to 960 px; detection works on 320)
# The head: a generic 3-D face fitted to the photo (see `Head`). An ellipsoid `HEAD_DEPTH` face
# widths deep, about whose vertical (turns) and horizontal (looking up) axes it rotates, plus
# the relief of the features over it, in interocular units (eye centres) per dlib landmark: the
# nose rising from the bridge to a tip about 0.4 in front of the eyes (RELIEF[27:36]), the eyes in
# their sockets, the lips and brows a little forward. dlib's landmarks read this head's turns as
# geometry predicts for a real one (the nose tip moves ~0.43 tan(angle) of the eye distance
# against the eyes and mouth: 0.09 at 12 degrees, 0.125 at 16, 0.155 at 20, 0.195 at 24).
HEAD_DEPTH = 0.55
RELIEF = np.zeros(68)
RELIEF[27:31] = [0.10, 0.18, 0.27, 0.38]         # bridge to tip
RELIEF[31:36] = [0.12, 0.19, 0.24, 0.19, 0.12]   # under the nose, nostril to nostril
RELIEF[36:48] = -0.04                            # eyes in their sockets
RELIEF[17:27] = 0.04                             # brows
RELIEF[48:68] = 0.06                             # lips
RELIEF[[48, 54, 60, 64]] = 0.0                   # mouth corners
# How far a citizen asked to turn or to look up does it, in degrees (the peak of the movement;
# the selfie page asks for a clear one, see `ekyc/templates/ekyc/selfie.html`), and how prominent
# their nose is against `RELIEF` (flatter and more prominent noses than the generic one).
TURN_PEAK, LOOK_UP_PEAK, NOSE_SCALE = (20.0, 30.0), (15.0, 22.0), (0.8, 1.1)
# capture.js: 3 frames looking straight, then per step `perStep` frames 350 ms apart (a blink
# step: 4 frames 130 ms apart), 800 ms before the first frame and 900 ms before each step; at
# most MAX_FRAMES frames are sent.
MAX_FRAMES, STEP_EVERY_MS, BLINK_FRAMES, BLINK_EVERY_MS = 13, 350, 4, 130
STRAIGHT_FRAMES = 3


# --- geometry ----------------------------------------------------------------------------------
class Head:
    """A photo prepared for warping: RGB at SIDE x SIDE, its landmarks and a depth map.

    With `selfie_quality` (the default) the photo must pass the selfie quality gate
    (`ekyc.face.quality`, the same the pipeline applies): a genuine burst starts with the citizen
    looking straight at the camera, eyes open, in even light, and a photo turned away (LFW has
    many) would be asked to be taken again before any liveness check."""

    def __init__(self, photo: bytes | np.ndarray, selfie_quality: bool = True):
        rgb = load_rgb(photo)
        h, w = rgb.shape[:2]
        side = min(h, w)
        rgb = rgb[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
        self.rgb = cv2.resize(rgb, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
        face = analyse(self.rgb)
        if face is None or face.faces != 1 or _more_faces(self.rgb):
            raise ValueError("not exactly one face in photo")
        if selfie_quality:
            from ekyc.face.quality import assess

            quality = assess(face)
            if not quality.ok:
                raise ValueError(f"the photo fails the selfie quality gate: {quality.problems}")
        self.landmarks = face.landmarks.astype(np.float64)
        lm = self.landmarks
        self.width = float(np.linalg.norm(lm[16] - lm[0]))
        cx = float(lm[[0, 16, 8, 27]][:, 0].mean())
        cy = float((lm[27, 1] + lm[8, 1]) / 2)
        self.centre = (cx, cy)
        self._mesh()

    def _mesh(self) -> None:
        """The generic head fitted to the landmarks, as a triangle mesh: the 68 landmarks, the
        forehead above the brows, a ring around the face on the head's silhouette (depth 0,
        on the rotation axes) and the frame's border (the background, which stays put)."""
        lm, (cx, cy), w = self.landmarks, self.centre, self.width
        iod = float(np.linalg.norm(lm[42:48].mean(axis=0) - lm[36:42].mean(axis=0)))
        bridge = float(np.linalg.norm(lm[27] - lm[30])) or 1.0
        forehead = lm[17:27] + (lm[27] - lm[30]) / bridge * 0.6 * bridge
        outline = np.vstack([lm[0:17], forehead[::-1]])
        ring = (outline - [cx, cy]) * 1.25 + [cx, cy]
        face = np.vstack([lm, forehead])
        r2 = ((face[:, 0] - cx) / (0.62 * w)) ** 2 + ((face[:, 1] - cy) / (0.85 * w)) ** 2
        last = SIDE - 1
        border = np.array([[0, 0], [SIDE / 2, 0], [last, 0], [last, SIDE / 2], [last, last],
                           [SIDE / 2, last], [0, last], [0, SIDE / 2]], np.float64)
        self.points = np.clip(np.vstack([face, ring, border]), 0, last)
        n_face, n_moving = len(face), len(face) + len(ring)
        self.depth = np.zeros(len(self.points))
        self.depth[:n_face] = HEAD_DEPTH * w * np.sqrt(np.clip(1 - r2, 0, None))
        self.relief = np.zeros(len(self.points))
        self.relief[:68] = RELIEF * iod
        self.moving = np.arange(len(self.points)) < n_moving
        self.nose = (np.arange(len(self.points)) >= 27) & (np.arange(len(self.points)) < 36)
        subdiv = cv2.Subdiv2D((-1, -1, SIDE + 2, SIDE + 2))
        for x, y in self.points:
            subdiv.insert((float(x), float(y)))
        triangles = []
        for corners in subdiv.getTriangleList().reshape(-1, 3, 2):
            gaps = np.abs(self.points[None] - corners[:, None]).sum(axis=2)
            idx = gaps.argmin(axis=1)
            if (gaps[np.arange(3), idx] < 1e-3).all():  # not one of Subdiv2D's outer corners
                triangles.append(idx)
        self.triangles = np.array(triangles)

    def rotated(self, yaw: float, pitch: float, rgb: np.ndarray | None = None,
                nose: float = 1.0) -> np.ndarray:
        """The head turned by `yaw` degrees (> 0: towards the image's right, the subject's
        left) and tilted by `pitch` (> 0: looking up), its nose `nose` times the generic one's
        relief: each mesh triangle warped to where the rotation projects it (orthographic),
        the nearest drawn last (the nose hides the cheek behind it)."""
        src = self.rgb if rgb is None else rgb
        if not yaw and not pitch:
            return src.copy()
        cx, cy = self.centre
        x, y = self.points[:, 0] - cx, self.points[:, 1] - cy
        z = self.depth + self.relief * np.where(self.nose, nose, 1.0)
        ty, tp = math.radians(yaw), math.radians(pitch)
        x1 = x * math.cos(ty) + z * math.sin(ty)
        z1 = z * math.cos(ty) - x * math.sin(ty)
        y2 = y * math.cos(tp) - z1 * math.sin(tp)
        z2 = z1 * math.cos(tp) + y * math.sin(tp)
        dst = np.where(self.moving[:, None], np.stack([x1 + cx, y2 + cy], axis=1), self.points)
        out = src.copy()
        h, w = src.shape[:2]
        for tri in self.triangles[np.argsort(z2[self.triangles].mean(axis=1))]:
            d = dst[tri]
            x0, y0 = np.maximum(np.floor(d.min(axis=0)).astype(int), 0)
            x1_, y1_ = np.minimum(np.ceil(d.max(axis=0)).astype(int) + 1, [w, h])
            if x1_ <= x0 or y1_ <= y0:
                continue
            mat = cv2.getAffineTransform((d - [x0, y0]).astype(np.float32),
                                         self.points[tri].astype(np.float32))
            patch = cv2.warpAffine(src, mat, (x1_ - x0, y1_ - y0),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REFLECT)
            mask = np.zeros((y1_ - y0, x1_ - x0), np.uint8)
            cv2.fillConvexPoly(mask, np.round((d - [x0, y0]) * 16).astype(np.int32), 1,
                               cv2.LINE_8, 4)
            region = out[y0:y1_, x0:x1_]
            region[mask > 0] = patch[mask > 0]
        return out

    def eyes_closed(self, amount: float = 1.0) -> np.ndarray:
        """The photo with both eyes shut (`amount` 1) or half shut (the upper lid half way
        down): the eye opening is covered with skin interpolated, column by column, between
        the lid skin just above and the skin just below it, and a lash line is drawn where the
        lids meet (at the lower lid when shut, across the middle of the eye when half shut)."""
        rgb = self.rgb.copy()
        soft = cv2.GaussianBlur(self.rgb, (5, 5), 0).astype(np.float32)
        h, w = rgb.shape[:2]
        noise = np.random.default_rng(int(self.landmarks[36, 0] * 7 + self.landmarks[45, 1]))
        for lo in (36, 42):
            eye = self.landmarks[lo:lo + 6]
            p1, p4 = eye[0], eye[3]
            width = float(np.linalg.norm(p4 - p1))
            opening = max(float(np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4]))
                          / 2, 0.15 * width)
            lower = np.array([p1, eye[5], eye[4], p4])  # lower lid, corner to corner
            upper = np.array([p1, eye[1], eye[2], p4])
            # the region to cover: the opening, grown a little sideways and up
            pad_x, pad_up, pad_down = 0.18 * width, 0.55 * opening, 0.25 * opening
            top = upper - [0, pad_up]
            bottom = lower + [0, pad_down]
            if amount < 1:  # half shut: cover only down to the middle of the opening
                bottom = (upper + lower) / 2
            top[0] -= [pad_x, 0]
            top[-1] += [pad_x, 0]
            bottom[0] -= [pad_x, 0]
            bottom[-1] += [pad_x, 0]
            xs = np.arange(int(np.floor(top[0, 0])), int(np.ceil(top[-1, 0])) + 1)
            y_top = np.interp(xs, top[:, 0], top[:, 1])
            y_bot = np.interp(xs, bottom[:, 0], bottom[:, 1])
            for x, y0, y1 in zip(xs, y_top, y_bot, strict=True):
                if not 0 <= x < w:
                    continue
                a, b = int(np.floor(y0)) - 1, int(np.ceil(y1)) + 1
                a, b = max(a, 0), min(b, h - 1)
                if b - a < 2:
                    continue
                above = soft[max(a - 2, 0), x]
                below = soft[min(b + 2, h - 1), x]
                if above.mean() < 0.85 * below.mean():  # eye shadow or lashes: use lid skin
                    above = below * 0.97
                if amount < 1:
                    below = above * 0.93
                t = np.linspace(0, 1, b - a + 1)[:, None]
                # a lid is rounded: a touch of shading towards its lower edge
                col = above * (1 - t) + below * t
                col *= 1 - 0.08 * np.sin(np.pi * t) * (amount >= 1)
                col += noise.normal(0, 2.0, col.shape)
                edge = min(x - xs[0], xs[-1] - x) / max(1.0, pad_x)  # feather the corners
                alpha = min(1.0, 0.35 + edge)
                rgb[a:b + 1, x] = np.clip(alpha * col + (1 - alpha) * rgb[a:b + 1, x], 0, 255)
            # lashes where the lids meet, curved like the lower lid
            line = lower.copy() if amount >= 1 else (upper + lower) / 2
            line[:, 1] -= 0.15 * opening
            skin = soft[int(np.clip(line[1, 1] + opening, 0, h - 1)),
                        int(np.clip(line[1, 0], 0, w - 1))]
            lash = tuple(int(c) for c in skin * 0.3)
            pts = np.array([line[0], line[1], (line[1] + line[2]) / 2, line[2], line[3]])
            thick = max(2, round(width / 9))
            cv2.polylines(rgb, [np.round(pts).astype(np.int32)], False, lash, thick, cv2.LINE_AA)
        changed = np.any(rgb != self.rgb, axis=2)
        near = cv2.dilate(np.uint8(changed) * 255, np.ones((3, 3))) > 0
        blurred = cv2.GaussianBlur(rgb, (3, 3), 0)
        rgb[near] = blurred[near]
        return rgb


def _more_faces(rgb: np.ndarray) -> bool:
    """Whether a thorough search (upsampled) finds a second, smaller face: a selfie shows one
    person, and a partial face at the photo's edge can win detection once the frame shakes."""
    from ekyc.face.frames import models

    small = cv2.resize(rgb, (320, 320), interpolation=cv2.INTER_AREA)
    return len(models()["detector"](small, 2)) > 1


def _jitter(rgb: np.ndarray, rng: random.Random, nrng: np.random.Generator,
            shake: float = 1.0) -> bytes:
    """Hand shake, light and sensor noise, then JPEG."""
    h, w = rgb.shape[:2]
    angle, scale = rng.uniform(-2, 2) * shake, 1 + rng.uniform(-0.03, 0.03) * shake
    mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    mat[:, 2] += [rng.uniform(-6, 6) * shake, rng.uniform(-6, 6) * shake]
    out = cv2.warpAffine(rgb, mat, (w, h), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    out = out * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8)
    out += nrng.normal(0, rng.uniform(1.0, 3.0), out.shape)
    return _jpeg(np.clip(out, 0, 255).astype(np.uint8), rng.randint(78, 92))


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _stamps(steps: list[int], rng: random.Random,
            every: list[int] | None = None) -> list[int]:
    """Client timestamps like capture.js: 800 ms, then a frame every `every[i]` ms (350, a
    blink step 130) in step i, 900 ms between steps (plus the time a grab takes)."""
    t = rng.randint(1_700_000_000_000, 1_800_000_000_000)
    out = []
    for i, count in enumerate(steps):
        t += 800 if i == 0 else 900
        gap = every[i] if every else STEP_EVERY_MS
        for _ in range(count):
            t += gap + rng.randint(5, 60)
            out.append(t)
    return out


# --- genuine -----------------------------------------------------------------------------------
def _step_frames(head: Head, action: str, count: int, rng: random.Random,
                 nose: float = 1.0) -> list[np.ndarray]:
    """`count` RGB frames of one action: the movement builds up and comes back."""
    if action == "blink":
        # 4 frames 130 ms apart span a 150-300 ms blink: one or two frames shut, sometimes
        # one half shut next to them, the others open
        shut, half, open_ = head.eyes_closed(), head.eyes_closed(0.5), head.rgb
        closed = rng.choice([1, 2])
        start = rng.randrange(0, count - closed + 1)
        frames = [open_] * count
        for i in range(start, start + closed):
            frames[i] = shut
        if rng.random() < 0.5:
            side = start - 1 if rng.random() < 0.5 else start + closed
            if 0 <= side < count:
                frames[side] = half
        return [f.copy() for f in frames]
    peak = rng.uniform(*TURN_PEAK) if action.startswith("turn") else rng.uniform(*LOOK_UP_PEAK)
    ramp = {2: [0.85, 1.0], 3: [0.7, 1.0, 0.9], 4: [0.6, 1.0, 1.0, 0.75]}.get(
        count, [0.6] + [1.0] * (count - 2) + [0.75])
    ramp = [r * rng.uniform(0.92, 1.08) for r in ramp]
    frames = []
    for r in ramp:
        a = peak * r
        if action == "turn_left":
            frames.append(head.rotated(a, rng.uniform(-1.5, 1.5), nose=nose))
        elif action == "turn_right":
            frames.append(head.rotated(-a, rng.uniform(-1.5, 1.5), nose=nose))
        elif action == "look_up":
            frames.append(head.rotated(rng.uniform(-1.5, 1.5), a, nose=nose))
        else:
            raise ValueError(f"unknown action {action!r}")
    return frames


def _per_step(actions: list[str], max_frames: int = MAX_FRAMES) -> int:
    """Frames per head movement, as capture.js: what is left after the look straight and the
    blink steps, shared between the movements, 2 to 4 each."""
    moves = sum(a != "blink" for a in actions) or 1
    left = max_frames - STRAIGHT_FRAMES - BLINK_FRAMES * (len(actions) - moves)
    return min(4, max(2, left // moves))


def step_counts(actions: list[str], max_frames: int = MAX_FRAMES) -> list[int]:
    """Frames per step as capture.js takes them (the look straight first), cut to
    `max_frames` in all."""
    counts = [STRAIGHT_FRAMES] + [BLINK_FRAMES if a == "blink" else _per_step(actions, max_frames)
                    for a in actions]
    out, left = [], max_frames
    for c in counts:
        out.append(min(c, left))
        left -= out[-1]
    return out


def step_every(actions: list[str]) -> list[int]:
    """Milliseconds between frames per step, as capture.js."""
    return [STEP_EVERY_MS] + [BLINK_EVERY_MS if a == "blink" else STEP_EVERY_MS
                              for a in actions]


def genuine_rgb(head: Head, actions: list[str], rng: random.Random,
                per_step: int | None = None) -> list[list[np.ndarray]]:
    """RGB frames per step (the look straight first, then one list per action)."""
    nose = rng.uniform(*NOSE_SCALE)
    counts = step_counts(actions)
    if per_step:
        counts = [STRAIGHT_FRAMES] + [BLINK_FRAMES if a == "blink" else per_step
                                      for a in actions]
    steps = [[head.rotated(rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5), nose=nose)
              for _ in range(counts[0])]]
    for action, count in zip(actions, counts[1:], strict=True):
        steps.append(_step_frames(head, action, count, rng, nose) if count else [])
    return steps


def _encode_steps(steps: list[list[np.ndarray]], rng: random.Random,
                  nrng: np.random.Generator, shake: float = 1.0,
                  every: list[int] | None = None) -> tuple[list[bytes], list[int]]:
    frames = [_jitter(f, rng, nrng, shake) for step in steps for f in step]
    return frames, _stamps([len(s) for s in steps], rng, every)


def genuine(photo, actions: list[str], *, seed: int = 0,
            per_step: int | None = None) -> tuple[list[bytes], list[int]]:
    """A genuine burst answering `actions`: (JPEG frames, client timestamps in ms)."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    head = photo if isinstance(photo, Head) else Head(photo)
    return _encode_steps(genuine_rgb(head, actions, rng, per_step), rng, nrng,
                         every=step_every(actions))


# --- attacks -----------------------------------------------------------------------------------
def _card_picture(head: Head, rng: random.Random, use_id_card: bool) -> np.ndarray:
    """A flat picture of the face: the synthetic ID card's front, or the portrait printed."""
    if use_id_card:
        try:
            return _id_card(head, rng)
        except Exception:  # noqa: BLE001, S110 - the document synth is optional here
            pass
    lm = head.landmarks
    x0, y0 = lm[:, 0].min(), lm[:, 1].min()
    x1, y1 = lm[:, 0].max(), lm[:, 1].max()
    w, h = x1 - x0, y1 - y0
    crop = head.rgb[max(0, int(y0 - 0.6 * h)):int(y1 + 0.3 * h),
                    max(0, int(x0 - 0.35 * w)):int(x1 + 0.35 * w)]
    crop = cv2.resize(crop, (220, 290), interpolation=cv2.INTER_AREA)
    card = np.full((300, 480, 3), (226, 231, 226), np.uint8)
    card[5:295, 10:230] = crop
    for i in range(6):
        cv2.line(card, (250, 40 + 40 * i), (450, 40 + 40 * i), (30, 30, 35), 3)
    # a print: less contrast and a colour cast
    return np.clip(card.astype(np.float32) * 0.85 + 20, 0, 255).astype(np.uint8)


def _id_card(head: Head, rng: random.Random) -> np.ndarray:
    import tempfile
    from datetime import date

    from ekyc.document import synth as doc

    data = doc.CardData(national_id="001099012345", full_name="Nguyen Van An",
                        family_name="Nguyen", given_name="Van An", birth=date(1990, 5, 17),
                        sex="M", hometown="Ha Noi", residence="1 Trang Tien, Hoan Kiem, Ha Noi",
                        issue_date=date(2021, 6, 1), expiry=date(2040, 5, 17),
                        old_id="012345678")
    with tempfile.NamedTemporaryFile(suffix=".jpg") as tmp:
        Image.fromarray(head.rgb).save(tmp.name, "JPEG", quality=95)
        front = doc.render_front(data, data, __import__("pathlib").Path(tmp.name), rng)
    return np.asarray(front.convert("RGB"))


def _flat_pose(picture: np.ndarray, yaw: float, pitch: float, rng: random.Random,
               fill: np.ndarray) -> np.ndarray:
    """The flat `picture` held in front of the camera, tilted by yaw/pitch degrees."""
    ph, pw = picture.shape[:2]
    width = SIDE * rng.uniform(0.8, 0.95)
    f = SIDE * 1.2
    corners = np.array([[-pw / 2, -ph / 2], [pw / 2, -ph / 2], [pw / 2, ph / 2],
                        [-pw / 2, ph / 2]]) * (width / pw)
    ry, rx = math.radians(yaw), math.radians(pitch)
    rot_y = np.array([[math.cos(ry), 0, math.sin(ry)], [0, 1, 0],
                      [-math.sin(ry), 0, math.cos(ry)]])
    rot_x = np.array([[1, 0, 0], [0, math.cos(rx), math.sin(rx)],
                      [0, -math.sin(rx), math.cos(rx)]])
    pts = np.c_[corners, np.zeros(4)] @ (rot_x @ rot_y).T
    dist = f * 1.0
    proj = np.stack([SIDE / 2 + f * pts[:, 0] / (dist - pts[:, 2]),
                     SIDE / 2 + f * pts[:, 1] / (dist - pts[:, 2])], axis=1)
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    mat = cv2.getPerspectiveTransform(src, proj.astype(np.float32))
    out = fill.copy()
    warped = cv2.warpPerspective(picture, mat, (SIDE, SIDE))
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), mat, (SIDE, SIDE))
    out[mask > 0] = warped[mask > 0]
    return out


def _card_steps(head: Head, actions: list[str], rng: random.Random) -> list[list[np.ndarray]]:
    picture = _card_picture(head, rng, use_id_card=rng.random() < 0.5)
    fill = np.full((SIDE, SIDE, 3), rng.randint(60, 200), np.uint8)
    poses = {"turn_left": (25, 0), "turn_right": (-25, 0), "look_up": (0, 20), "blink": (0, 0)}
    counts = step_counts(actions)
    steps = [[_flat_pose(picture, 0, 0, rng, fill) for _ in range(counts[0])]]
    for action, count in zip(actions, counts[1:], strict=True):
        yaw, pitch = poses[action]
        ramp = [0.5] + [1.0] * max(0, count - 2) + [0.5]
        steps.append([_flat_pose(picture, yaw * r, pitch * r, rng, fill)
                      for r in ramp[:count]])
    return steps


def attack(kind: str, photo, actions: list[str], *, seed: int = 0,
           other=None) -> tuple[list[bytes], list[int]]:
    """An attack burst against the challenge `actions`. `other` (a photo or `Head` of another
    person) is needed for `face_swap`."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    head = photo if isinstance(photo, Head) else Head(photo)
    every = step_every(actions)
    if kind == "still":
        counts = step_counts(actions)
        frames = _encode_steps([[head.rgb] * sum(counts)], rng, nrng, shake=0.3)[0]
        return frames, _stamps(counts, rng, every)
    if kind == "card":
        return _encode_steps(_card_steps(head, actions, rng), rng, nrng, every=every)
    if kind == "reordered":
        # the steps of a genuine burst put in another order; the timestamps are forged to
        # look like a capture of the steps in that order
        steps = genuine_rgb(head, actions, rng)
        body = steps[1:]
        order = list(range(len(body)))
        while order == sorted(order):
            rng.shuffle(order)
        return _encode_steps([steps[0]] + [body[i] for i in order], rng, nrng,
                             every=step_every([actions[i] for i in order]))
    if kind == "other_session":
        others = [list(p) for p in _permutations(ACTIONS, len(actions)) if list(p) != actions]
        replayed = rng.choice(others)
        return _encode_steps(genuine_rgb(head, replayed, rng), rng, nrng,
                             every=step_every(replayed))
    if kind == "face_swap":
        if other is None:
            raise ValueError("face_swap needs another person's photo")
        second = other if isinstance(other, Head) else Head(other, selfie_quality=False)
        steps = genuine_rgb(head, actions, rng)
        theirs = genuine_rgb(second, actions, rng)
        swap = rng.randrange(1, len(steps))
        steps[swap] = theirs[swap]
        return _encode_steps(steps, rng, nrng, every=every)
    raise ValueError(f"unknown attack {kind!r}")


def _permutations(items, k):
    import itertools

    return itertools.permutations(items, k)


__all__ = ["ACTIONS", "ATTACKS", "Head", "attack", "genuine", "genuine_rgb", "step_counts",
           "step_every"]
