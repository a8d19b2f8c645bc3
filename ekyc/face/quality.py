"""Quality gates for a face image before it is compared (DOMAIN.md section 5: gate on face
size, blur, pose and light), with messages that tell the citizen what to change.

    from ekyc.face.quality import assess, QUALITY_MESSAGES
    q = assess(analyse(jpeg), kind="selfie")
    q.ok, q.problems, q.measures          # problems: stable codes, see PROBLEMS

Everything is measured on the face region of the `FaceFrame` already found (landmarks,
box): a face crop scaled to `CROP` pixels wide for blur and light, the landmarks for the eye
aspect ratio and the head pose. Cost: about a millisecond per frame.

The limits (`SELFIE`, `PORTRAIT`) were set on faces-dev (LFW photos: every limit passes at
least 97% of them) and on degraded copies (blurred, darkened, over-exposed, half-shaded,
shrunk): see tests/ekyc/face/test_quality.py. A card portrait is a small printed photo; it
gets laxer size, blur and pose limits and no eye check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from flask_babel import lazy_gettext as _l

from ekyc.face.frames import FaceFrame, eye_aspect_ratio, head_pose

PROBLEMS = ("no_face", "several_faces", "face_too_small", "blurred", "too_dark", "too_bright",
            "uneven_light", "turned_away", "eyes_closed")

QUALITY_MESSAGES = {
    "no_face": _l("We could not see a face. Look straight at the camera with your whole face "
                  "inside the frame."),
    "several_faces": _l("More than one face is visible. Make sure you are alone in the "
                        "picture."),
    "face_too_small": _l("Your face is too far away. Move closer to the camera."),
    "blurred": _l("The picture is blurred. Hold the phone still, clean the lens and try "
                  "again."),
    "too_dark": _l("The picture is too dark. Move to a brighter place or face a light."),
    "too_bright": _l("The picture is too bright. Move away from direct light or a bright "
                     "window."),
    "uneven_light": _l("One side of your face is in shadow. Face the light so that it falls "
                       "evenly on your face."),
    "turned_away": _l("Your head is turned. Look straight at the camera."),
    "eyes_closed": _l("Your eyes seem closed. Keep your eyes open and look at the camera."),
}

CROP = 128  # face crop width (pixels) on which blur and light are measured


@dataclass(frozen=True)
class Limits:
    min_face: int          # face box width, input pixels
    min_sharpness: float   # variance of the Laplacian of the face crop
    min_brightness: float  # mean grey level of the face crop (0-255)
    max_brightness: float
    max_clipped: float     # share of the face crop at 250 or above
    min_side_ratio: float  # darker half / brighter half (left vs right of the nose)
    max_yaw: float         # degrees
    max_pitch: float
    min_ear: float | None  # eye aspect ratio; None: not checked
    one_face: bool


SELFIE = Limits(min_face=80, min_sharpness=15.0, min_brightness=45.0, max_brightness=215.0,
                max_clipped=0.25, min_side_ratio=0.4, max_yaw=30.0, max_pitch=25.0,
                min_ear=0.14, one_face=True)
PORTRAIT = Limits(min_face=40, min_sharpness=6.0, min_brightness=35.0, max_brightness=230.0,
                  max_clipped=0.4, min_side_ratio=0.3, max_yaw=35.0, max_pitch=35.0,
                  min_ear=None, one_face=False)
LIMITS = {"selfie": SELFIE, "portrait": PORTRAIT}


@dataclass(frozen=True)
class Quality:
    """`ok` when `problems` is empty; `measures` holds the numbers (JSON-safe, no image)."""

    ok: bool
    problems: list[str]
    measures: dict = field(default_factory=dict)


def _grey_crop(face: FaceFrame) -> tuple[np.ndarray, float]:
    """The face box in grey, scaled to CROP pixels wide, and the nose's x in that crop."""
    import cv2

    x, y, w, h = face.box
    rgb = face.rgb[y:y + h, x:x + w]
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    height = max(1, round(h * CROP / max(w, 1)))
    grey = cv2.resize(grey, (CROP, height), interpolation=cv2.INTER_AREA)
    nose = (float(face.landmarks[30][0]) - x) * CROP / max(w, 1)
    return grey, nose


def measure(face: FaceFrame) -> dict:
    """The raw quality numbers of a face (see `Limits`)."""
    import cv2

    grey, nose = _grey_crop(face)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    split = int(min(max(nose, CROP * 0.25), CROP * 0.75))
    halves = (float(grey[:, :split].mean()), float(grey[:, split:].mean()))
    yaw, pitch, roll = head_pose(face.landmarks, face.size)
    return {"face_width": int(face.box[2]), "faces": int(face.faces),
            "sharpness": round(sharpness, 1), "brightness": round(float(grey.mean()), 1),
            "clipped": round(float((grey >= 250).mean()), 3),
            "side_ratio": round(min(halves) / max(max(halves), 1e-6), 3),
            "yaw": round(yaw, 1), "pitch": round(pitch, 1), "roll": round(roll, 1),
            "ear": round(eye_aspect_ratio(face.landmarks), 3)}


def assess(face: FaceFrame | None, *, kind: str = "selfie") -> Quality:
    """The quality problems of one face (`kind` "selfie" or "portrait"), in PROBLEMS order."""
    limits = LIMITS[kind]
    if face is None:
        return Quality(False, ["no_face"], {})
    m = measure(face)
    found = {
        "several_faces": limits.one_face and m["faces"] > 1,
        "face_too_small": m["face_width"] < limits.min_face,
        "blurred": m["sharpness"] < limits.min_sharpness,
        "too_dark": m["brightness"] < limits.min_brightness,
        "too_bright": (m["brightness"] > limits.max_brightness
                       or m["clipped"] > limits.max_clipped),
        "uneven_light": m["side_ratio"] < limits.min_side_ratio,
        "turned_away": abs(m["yaw"]) > limits.max_yaw or abs(m["pitch"]) > limits.max_pitch,
        "eyes_closed": limits.min_ear is not None and m["ear"] < limits.min_ear,
    }
    problems = [code for code in PROBLEMS if found.get(code)]
    return Quality(not problems, problems, m)


__all__ = ["LIMITS", "PORTRAIT", "PROBLEMS", "QUALITY_MESSAGES", "SELFIE", "Limits",
           "Quality", "assess", "measure"]
