"""The selfie against the card portrait (and the register's portrait, where it holds one):
quality gates, fusion of the usable selfie frames, three outcomes at calibrated thresholds.

    from ekyc.face.compare import compare_selfie
    burst = analyse_burst(frames, matcher)          # shared with liveness
    result = compare_selfie(burst, card_portrait_jpeg, register_jpeg)
    result.outcome, result.reason_code, result.distance_card

Decision (DOMAIN.md section 5):
1. Every selfie frame goes through the selfie quality gates (`ekyc.face.quality`); frames of
   the liveness actions (head turned, eyes closed) fail them and are simply not used. No frame
   with a face: `unusable` / `selfie_no_face`; faces but none passing: `unusable` /
   `selfie_quality` (`quality` says what to change).
2. The first `MAX_FUSED` usable frames' embeddings are averaged and scaled back to their mean length (averaging
   shortens the vector, which would shrink every distance and void the calibration): one fused
   selfie template, less sensitive to one frame's blur or expression.
3. The card portrait is encoded (`matcher.encode`, or `card_encoding` when the caller already
   has it). No face on it: `review` / `portrait_no_face` (an officer compares).
4. Card outcome = `thresholds.outcome(distance_card)`: `reject` -> `reject` / `face_mismatch`.
   A register portrait (when given and a face is found in it) is compared too: `reject`
   against it -> `review` / `face_mismatch` (the register photo may be years older than the
   card; an officer decides). `accept` only when the card outcome is `accept` and the register
   outcome, if any, is not `reject`; otherwise `review` / `face_uncertain`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ekyc.face.matcher import Encoding, FaceImageError, default_matcher
from ekyc.face.quality import assess
from ekyc.face.thresholds import ACCEPT, REJECT, REVIEW, ThresholdsError
from ekyc.face.thresholds import load as load_thresholds

UNUSABLE = "unusable"
MAX_FUSED = 3  # selfie frames fused at most
REASONS = ("selfie_no_face", "selfie_quality", "portrait_no_face", "face_mismatch",
           "face_uncertain")


@dataclass
class SelfieComparison:
    """What the face check found. `quality[i]` is frame i's problem codes ([] = usable);
    `detail` is JSON-safe and holds no vector."""

    outcome: str
    reason_code: str | None
    distance_card: float | None
    distance_register: float | None
    frames_used: int
    quality: list[list[str]]
    model: str
    strict: float
    loose: float
    detail: dict = field(default_factory=dict)
    # The fused selfie template (what the 1:N index searches and enrols) and the card
    # portrait's encoding (liveness compares the burst with it); never serialised.
    fused: Encoding | None = field(default=None, repr=False)
    card_encoding: Encoding | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("fused", None)
        out.pop("card_encoding", None)
        return out


def fuse(encodings: list[Encoding]) -> Encoding:
    """One template from several embeddings of the same capture: their mean, scaled to their
    mean length; box and face count of the first."""
    vectors = np.stack([e.vector for e in encodings])
    mean = vectors.mean(axis=0)
    length = float(np.linalg.norm(mean))
    if length > 0:
        mean = mean * (float(np.linalg.norm(vectors, axis=1).mean()) / length)
    first = encodings[0]
    return Encoding(mean, first.box, first.faces, first.model)


def _limits(matcher, thresholds):
    return thresholds if thresholds is not None else load_thresholds(matcher.model)


def _encode_or_none(matcher, image: bytes | None) -> tuple[Encoding | None, str | None]:
    if image is None:
        return None, "not_given"
    try:
        found = matcher.encode(image)
    except FaceImageError as exc:
        return None, exc.code
    return found, None if found is not None else "no_face"


def compare_selfie(burst, card_portrait: bytes | None, register_portrait: bytes | None = None,
                   *, matcher=None, thresholds=None, card_encoding: Encoding | None = None,
                   register_encoding: Encoding | None = None) -> SelfieComparison:
    """Compare a selfie burst (`ekyc.face.frames.Burst`) with the card's portrait and, when
    given, the register's portrait (see the module docstring for the decision).
    `card_encoding` / `register_encoding`: embeddings the caller already has (the document
    reader encodes both portraits), saving ~110 ms of CPU each."""
    matcher = matcher or default_matcher()
    limits = _limits(matcher, thresholds)
    model = str(matcher.model)

    def result(outcome, reason, **kw) -> SelfieComparison:
        base = {"distance_card": None, "distance_register": None, "frames_used": 0,
                "quality": quality, "detail": detail, "fused": selfie, "card_encoding": card}
        base.update(kw)
        return SelfieComparison(outcome, reason, model=model, strict=limits.strict,
                                loose=limits.loose, **base)

    quality: list[list[str]] = []
    usable: list[Encoding] = []
    selfie: Encoding | None = None
    card: Encoding | None = card_encoding
    for i, face in enumerate(burst.faces):
        if face is None:
            quality.append(["no_face"])
            continue
        q = assess(face, kind="selfie")
        quality.append(q.problems)
        # The first MAX_FUSED usable frames (the look straight at the camera comes first):
        # encoding is the stage's main cost, and more near-identical frames add little.
        if q.ok and len(usable) < MAX_FUSED and burst.encodings[i] is not None:
            usable.append(burst.encodings[i])
    detail: dict = {"frames": len(burst.faces),
                    "frames_with_face": sum(f is not None for f in burst.faces),
                    "frame_errors": [e for e in burst.errors if e]}
    if not detail["frames_with_face"]:
        return result(UNUSABLE, "selfie_no_face")
    if not usable:
        problems = sorted({p for q in quality for p in q})
        detail["problems"] = problems
        return result(UNUSABLE, "selfie_quality")

    selfie = fuse(usable)
    card = card_encoding
    if card is None:
        card, why = _encode_or_none(matcher, card_portrait)
        if card is None:
            detail["card"] = why
            return result(REVIEW, "portrait_no_face", frames_used=len(usable))
    distance_card = matcher.distance(selfie, card)
    per_frame = [matcher.distance(e, card) for e in usable]
    detail["card_frame_distances"] = {"min": round(min(per_frame), 4),
                                      "max": round(max(per_frame), 4)}
    card_outcome = limits.outcome(distance_card)
    detail["card_outcome"] = card_outcome

    distance_register, register_outcome = None, None
    if register_portrait is not None or register_encoding is not None:
        register, why = register_encoding, None
        if register is None:
            register, why = _encode_or_none(matcher, register_portrait)
        if register is None:
            detail["register"] = why
        else:
            distance_register = matcher.distance(selfie, register)
            register_outcome = limits.outcome(distance_register)
            detail["register_outcome"] = register_outcome

    measured = {"distance_card": round(distance_card, 4),
                "distance_register": (round(distance_register, 4)
                                      if distance_register is not None else None),
                "frames_used": len(usable)}
    if card_outcome == REJECT:
        return result(REJECT, "face_mismatch", **measured)
    if register_outcome == REJECT:
        return result(REVIEW, "face_mismatch", **measured)
    if card_outcome == ACCEPT:
        return result(ACCEPT, None, **measured)
    return result(REVIEW, "face_uncertain", **measured)


# --- `ekyc compare IMG_A IMG_B` --------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image_a", metavar="IMG_A", help="a face image (JPEG, PNG or WebP)")
    parser.add_argument("image_b", metavar="IMG_B", help="another face image")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def cli_compare(args: argparse.Namespace) -> int:
    """Exit 0 with the comparison; 2 when an image cannot be read or shows no face."""
    from ekyc.face.frames import analyse

    matcher = default_matcher()
    try:
        limits = _limits(matcher, None)
    except ThresholdsError as exc:
        print(f"ekyc compare: {exc}", file=sys.stderr)
        return 2
    found = []
    for name in (args.image_a, args.image_b):
        try:
            data = Path(name).read_bytes()
            encoding = matcher.encode(data)
        except OSError as exc:
            print(f"ekyc compare: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except FaceImageError as exc:
            print(f"ekyc compare: {name} is not a usable image ({exc.code})", file=sys.stderr)
            return 2
        if encoding is None:
            print(f"ekyc compare: no face found in {name}", file=sys.stderr)
            return 2
        face = analyse(data)
        found.append((encoding, assess(face, kind="portrait").problems))
    distance = matcher.distance(found[0][0], found[1][0])
    out = {"distance": round(distance, 4), "outcome": limits.outcome(distance),
           "model": matcher.model.name, "model_version": matcher.model.version,
           "strict": limits.strict, "loose": limits.loose,
           "faces": [e.faces for e, _ in found], "quality": [q for _, q in found]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['outcome']}: distance {out['distance']} (accept < {limits.strict}, "
              f"reject >= {limits.loose}; {matcher.model})")
    return 0


__all__ = ["REASONS", "UNUSABLE", "SelfieComparison", "compare_selfie", "fuse"]
