"""One face in one image, analysed once and shared by matching, quality gates and liveness.

    from ekyc.face.frames import analyse, eye_aspect_ratio, head_pose
    face = analyse(jpeg_bytes)                  # None when no face
    face.box, face.faces, face.landmarks        # (left, top, w, h), count, (68, 2) float32
    ear = eye_aspect_ratio(face.landmarks)      # mean of both eyes, ~0.3 open, <0.2 closed
    yaw, pitch, roll = head_pose(face.landmarks, face.size)   # degrees

Detection is dlib's HOG detector run on a copy scaled down so its longer side is at most
`DETECT_SIDE` (a selfie face fills a good part of the frame, and HOG's cost grows with the
pixel count: ~9 ms at 320 px against ~140 ms at 640 px with upsampling), without upsampling
first and with one upsampling only when that finds nothing. The 68 landmarks are then placed on
the full-resolution image. `analyse(..., hint=box)` (the face of the previous frame of a burst)
follows that face: with several faces in the frame it keeps the one where the previous face was
(a bystander at the edge of the picture does not take over), and when the whole image shows no
face it looks again around the box, first at that region's own resolution (a face too small for
the scaled copy), then on the scaled copy with a lowered detector threshold, keeping only a
detection that overlaps the previous face (`TRACK_THRESHOLD`, `TRACK_IOU`): dlib's frontal
detector scores a head turned 20-30 degrees, as the liveness challenge asks, below its
threshold, and a face that was just there and still scores near it has not gone.

Landmark indices (iBUG 300-W, 0-based): jaw 0-16, nose tip 30, chin 8, right eye 36-41 (the
subject's right, on the image's left), left eye 42-47, mouth corners 48 and 54.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ekyc.face.matcher import _face_recognition, _resize, load_rgb

DETECT_SIDE = 320
# Following a burst's face (see above): a detection scoring at least TRACK_THRESHOLD (dlib's
# own threshold is 0; a frontal face scores 0.2-1.2, a turned one -0.8-0) whose box overlaps
# the previous frame's face by an intersection over union of TRACK_IOU or more.
TRACK_THRESHOLD = -0.8
TRACK_IOU = 0.4

_MODELS: dict = {}
_LOCK = threading.Lock()


def models() -> dict:
    """dlib's detector, 68- and 5-point shape predictors and ResNet encoder, loaded once."""
    with _LOCK:
        if not _MODELS:
            _face_recognition()  # handles the pkg_resources warning and Pillow's flag
            import dlib
            import face_recognition_models as frm

            _MODELS.update(
                dlib=dlib,
                detector=dlib.get_frontal_face_detector(),
                shape68=dlib.shape_predictor(frm.pose_predictor_model_location()),
                shape5=dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
                encoder=dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
            )
        return _MODELS


@dataclass
class FaceFrame:
    """The largest face of an image. `box` and `landmarks` are in the input image's pixels
    (after EXIF rotation); `size` is (width, height); `rgb` the decoded image."""

    box: tuple[int, int, int, int]
    faces: int
    landmarks: np.ndarray
    size: tuple[int, int]
    rgb: np.ndarray = field(repr=False)
    rect: object = field(repr=False, default=None)  # dlib.rectangle in input pixels


def _detect(rgb: np.ndarray, detect_side: int) -> tuple[list, float]:
    """dlib rectangles found on a scaled copy, and the scale from input to that copy."""
    m = models()
    h, w = rgb.shape[:2]
    scale = min(1.0, detect_side / max(h, w))
    work = _resize(rgb, scale) if scale != 1.0 else rgb
    rects = list(m["detector"](work, 0))
    if not rects:
        rects = list(m["detector"](work, 1))
    return rects, scale


def _iou(a, box: tuple[int, int, int, int]) -> float:
    """Intersection over union of a dlib rectangle and an (x, y, w, h) box."""
    x, y, w, h = box
    ix = max(0, min(a.right(), x + w) - max(a.left(), x))
    iy = max(0, min(a.bottom(), y + h) - max(a.top(), y))
    inter = ix * iy
    union = a.width() * a.height() + w * h - inter
    return inter / union if union > 0 else 0.0


def _track(rgb: np.ndarray, hint: tuple[int, int, int, int], detect_side: int) -> list:
    """Detections on the scaled copy scoring at least `TRACK_THRESHOLD` that overlap `hint` by
    `TRACK_IOU` or more, best first, in input pixels."""
    m = models()
    h, w = rgb.shape[:2]
    scale = min(1.0, detect_side / max(h, w))
    work = _resize(rgb, scale) if scale != 1.0 else rgb
    rects, scores, _ = m["detector"].run(work, 0, TRACK_THRESHOLD)
    found = [(s, _to_input(r, scale)) for r, s in zip(rects, scores, strict=True)]
    return [r for s, r in sorted(found, key=lambda p: -p[0]) if _iou(r, hint) >= TRACK_IOU]


def _to_input(rect, scale: float, dx: int = 0, dy: int = 0):
    dlib = models()["dlib"]
    return dlib.rectangle(round(rect.left() / scale) + dx, round(rect.top() / scale) + dy,
                          round(rect.right() / scale) + dx, round(rect.bottom() / scale) + dy)


def analyse(image: bytes | np.ndarray, *, hint: tuple[int, int, int, int] | None = None,
            detect_side: int = DETECT_SIDE) -> FaceFrame | None:
    """The largest face of `image` with its 68 landmarks, or None. Raises `FaceImageError` for
    an unusable image (see `load_rgb`). With `hint` (the face's box in the previous frame of a
    burst): of several faces the one overlapping it most, and when the whole image shows none,
    the region around it searched at its own resolution, then a weaker detection overlapping
    it (see the module's docstring)."""
    rgb = load_rgb(image)
    h, w = rgb.shape[:2]
    found, scale = _detect(rgb, detect_side)
    rects = [_to_input(r, scale) for r in found]
    faces = len(rects)
    if not rects and hint is not None:
        # A face too small for the scaled copy: look again around the previous frame's face,
        # at that region's own resolution.
        x, y, bw, bh = hint
        x0, y0 = max(0, x - bw), max(0, y - bh)
        x1, y1 = min(w, x + 2 * bw), min(h, y + 2 * bh)
        if x1 - x0 > 40 and y1 - y0 > 40:
            found, scale = _detect(np.ascontiguousarray(rgb[y0:y1, x0:x1]), detect_side)
            rects = [_to_input(r, scale, x0, y0) for r in found]
            faces = len(rects)
    if not rects and hint is not None:
        # a head turned further than dlib's frontal detector accepts: the best weaker
        # detection where the face just was
        rects = _track(rgb, hint, detect_side)[:1]
        faces = len(rects)
    if not rects:
        return None
    rect = max(rects, key=lambda r: r.width() * r.height())
    if hint is not None and len(rects) > 1:
        # follow the burst's face rather than a larger one that came into the picture
        near = max(rects, key=lambda r: _iou(r, hint))
        if _iou(near, hint) > 0:
            rect = near
    shape = models()["shape68"](rgb, rect)
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    left, top = max(0, rect.left()), max(0, rect.top())
    box = (left, top, min(w, rect.right()) - left, min(h, rect.bottom()) - top)
    return FaceFrame(box=box, faces=faces, landmarks=points, size=(w, h), rgb=rgb, rect=rect)


def _eye(points: np.ndarray) -> float:
    p1, p2, p3, p4, p5, p6 = points
    horizontal = float(np.linalg.norm(p1 - p4))
    if horizontal <= 0:
        return 0.0
    return float((np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2 * horizontal))


def eye_aspect_ratio(landmarks: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes (DOMAIN.md section 6)."""
    return (_eye(landmarks[36:42]) + _eye(landmarks[42:48])) / 2


# A generic 3-D face (millimetres, x right, y up, z towards the camera) for solvePnP:
# nose tip, chin, right eye outer corner, left eye outer corner, mouth right, mouth left.
_MODEL_3D = np.array([(0.0, 0.0, 0.0), (0.0, -63.6, -12.5), (-43.3, 32.7, -26.0),
                      (43.3, 32.7, -26.0), (-28.9, -28.9, -24.1), (28.9, -28.9, -24.1)],
                     dtype=np.float64)
_POSE_POINTS = (30, 8, 36, 45, 48, 54)


def head_pose(landmarks: np.ndarray, size: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from `cv2.solvePnP` on six landmarks against a generic
    3-D face, focal length = image width. Yaw > 0: the face turned towards the image's right
    (the subject's left, as seen in a mirrored selfie preview it is the citizen's "left");
    pitch > 0: looking up."""
    import cv2

    w, h = size
    camera = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], dtype=np.float64)
    image_points = np.array([landmarks[i] for i in _POSE_POINTS], dtype=np.float64)
    ok, rvec, _ = cv2.solvePnP(_MODEL_3D, image_points, camera, np.zeros((4, 1)),
                               flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return 0.0, 0.0, 0.0
    rot, _ = cv2.Rodrigues(rvec)
    # Image y points down and the model's y up: flip to read angles in the face's frame.
    rot = np.diag([1.0, -1.0, -1.0]) @ rot
    sy = math.hypot(rot[0, 0], rot[1, 0])
    pitch = math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
    yaw = math.degrees(math.atan2(-rot[2, 0], sy))
    roll = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
    # atan2 gives the chin-forward tilt (looking down) as positive: turn it round so that
    # pitch > 0 is looking up, as documented (checked against projected model points).
    pitch = -((pitch + 180) % 360 - 180)
    return yaw, pitch, roll


class LazyEncodings(Sequence):
    """The embeddings of a burst's faces, computed on first access (`matcher.encode_frame`,
    ~74 ms each, the stage's main cost): checks ask only for the frames they use. Indexing
    gives an `Encoding` or None (no face); `computed` counts the encodings made so far."""

    def __init__(self, faces: list[FaceFrame | None], matcher):
        self._faces, self._matcher = faces, matcher
        self._cache: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self._faces)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]
        if index not in self._cache:
            face = self._faces[index]
            self._cache[index] = self._matcher.encode_frame(face) if face is not None else None
        return self._cache[index]

    @property
    def computed(self) -> int:
        return sum(1 for e in self._cache.values() if e is not None)


@dataclass
class Burst:
    """A burst of selfie frames analysed once: per frame its face (None: no face) and that
    face's embedding (None: no face; computed lazily, see `LazyEncodings`), in capture order;
    `errors[i]` is the FaceImageError code of an unusable frame."""

    faces: list[FaceFrame | None]
    encodings: Sequence
    errors: list[str | None]


def analyse_burst(frames: list[bytes | np.ndarray], matcher) -> Burst:
    """Detect each frame (near the previous frame's face first) and place its landmarks; each
    face is encoded with `matcher.encode_frame` when a check first asks for it."""
    from ekyc.face.matcher import FaceImageError

    faces, errors, hint = [], [], None
    for frame in frames:
        try:
            face = analyse(frame, hint=hint)
            error = None
        except FaceImageError as exc:
            face, error = None, exc.code
        faces.append(face)
        errors.append(error)
        hint = face.box if face is not None else hint
    return Burst(faces, LazyEncodings(faces, matcher), errors)


__all__ = ["DETECT_SIDE", "TRACK_IOU", "TRACK_THRESHOLD", "Burst", "FaceFrame", "LazyEncodings",
           "analyse", "analyse_burst", "eye_aspect_ratio", "head_pose", "models"]
