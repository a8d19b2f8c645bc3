"""The active liveness check: did the same live face perform the challenge's actions, in order,
in a burst captured as `capture.js` captures it (DOMAIN.md section 6)?

    result = verify(burst, ["turn_left", "blink"], timestamps_ms=[...], reference=card_encoding)
    result.outcome            # "pass" | "review" | "fail"
    result.reason_code        # None or one of REASONS
    result.score, result.detail

What is checked, in order (the first failing check gives the reason):
1. timing: one client timestamp per frame, strictly increasing, at least `MIN_GAP_MS` apart,
   spanning at most `ttl_ms`; none at all (photos picked from files) is unknown timing: review.
2. faces: enough frames show a face at least as wide as a selfie's (`ekyc.face.quality.SELFIE`;
   smaller ones, such as the portrait on an ID card held up to the camera, are too small for
   their landmarks to show a movement), and the first ones (the look straight) do.
3. same face: the embeddings of the first two faces (the anchor) and of one face per capture
   step, its least turned one with open eyes (every third face without steps; encoding is the
   stage's main cost), are close to the anchor's (another person during a step fails; a
   sampled face only not clearly alike goes to review); with `reference` (the card portrait),
   the anchor is not clearly someone else.
4. not a still: the landmarks move between frames (a photo sent again and again does not).
5. actions: each frame is labelled from its landmarks against the person's own first frames
   (`ekyc.liveness.measures`): turned to the citizen's left or right, looking up, eyes shut
   (the eye aspect ratio dropped, or the eye patches no longer look like the open eyes).
   Runs of equal labels are events; the challenge's actions must appear as events in the
   challenge's order, and no head movement that was not asked for may appear (a burst answering
   another challenge, or reordered frames, fails). Blinks that were not asked for are allowed
   (people blink); a head movement within a blink step after the face came back is not
   (`moved_again`). When the timestamps show capture.js's steps (a pause before each), every
   action must also be seen within its own step, and a frame of a turn step read as looking
   up that also moved half-way towards the asked turn counts as that turn (`step_labels`).
6. passive cues (`ekyc.liveness.passive`) on the first face: a high attack score sends to
   review (hand-set cues, too weak to fail anyone on their own).

Head turns and looking up are read from the nose's parallax against the eyes and mouth, which a
flat picture (a print, the ID card, a screen) tilted in front of the camera cannot produce.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ekyc.face.quality import SELFIE
from ekyc.liveness.measures import FrameMeasures, eye_similarity, measure, normalise_patches

ACTIONS = ("turn_left", "turn_right", "blink", "look_up")
POSE_ACTIONS = ("turn_left", "turn_right", "look_up")

# Stable reason codes (the pipeline maps them to messages and policy).
REASONS = {
    "liveness_no_timing": "no capture timestamps (photos from files): an officer looks",
    "liveness_timing": "timestamps missing, out of order, too fast or beyond the deadline",
    "liveness_too_few_faces": "too few frames show a face large enough to read, or the first ones "
                              "show none",
    "liveness_face_changed": "a different face appears during the burst",
    "liveness_not_card_holder": "the burst clearly shows someone other than the card portrait",
    "liveness_face_uncertain": "faces within the burst, or with the card, are not clearly alike",
    "liveness_static": "the frames do not move: a still picture sent repeatedly",
    "liveness_action_missing": "a requested action was not seen",
    "liveness_order": "the actions were seen in another order, or unrequested ones were seen",
    "liveness_passive_attack": "texture, moire or reflection cues of a print or a screen",
}

# Thresholds on baseline-relative measures (see measures.py). A real head's nose tip stands about
# 0.4 of the eye distance in front of the eyes and mouth, so a turn by an angle a moves it
# ~0.4 tan(a) in the eyes-mouth frame; dlib's landmarks on generated heads with that geometry
# read ~0.43 tan(a) (`ekyc.liveness.synth`, tests/ekyc/liveness/test_synth.py): 0.10 is a turn
# of ~13 degrees, well under the clear turn the page asks for (20 degrees or more), and above
# the look straight's landmark noise (95th percentile ~0.04) and a held-up card's (a flat
# picture moves it only by its landmarks' jitter). Looking up: 0.08 is ~13 degrees.
TURN_DELTA = 0.10      # |delta u| for a head turn
LOOK_UP_DELTA = 0.08   # -delta v for looking up
BLINK_RATIO = 0.82     # EAR below this share of the open-eye EAR ...
BLINK_DROP = 0.035     # ... and at least this much below it, or a fifth of it for small eyes
#                        (an open EAR under 0.175, common in East Asian faces, cannot drop 0.035
#                        at 0.82; every challenge also has a head movement, which a flat picture
#                        cannot fake)
BLINK_EYES = 0.85      # or the eye patches' likeness to the open eyes below this (measures.py;
#                        generated bursts: open eyes ~2.5% below it, shut eyes ~97%)
BLINK_EYES_STEP = 0.06  # in a blink step: the eye patches this far below the step's most open
#                         eyes (which must look open, >= BLINK_EYES) also read as shut (small
#                         eyes lose less of their patch when they shut; see step_labels)
STATIC_MOTION = 0.04   # RMS landmark motion (interocular units) below which frames are a still
SAME_FACE_FAIL = 0.6  # embedding distance to the first frames: clearly another person
SAME_FACE_REVIEW = 0.5
REFERENCE_FAIL = 0.62  # burst vs card portrait: clearly another person (the face check decides
#                        accept/review itself)
STEP_TOWARD = 0.5      # see step_labels
MIN_GAP_MS = 20
STEP_PAUSE_MS = 700    # capture.js: 900 ms before each step, frames 130 or 350 ms apart
DEFAULT_TTL_MS = 120_000
MIN_FACE_SHARE = 0.6
# A face narrower than this (face box, input pixels) counts as no face: the selfie's own quality
# gate, under which dlib's landmark jitter grows towards the movement thresholds (the look
# straight's nose-position spread: ~0.015 interocular at 150-250 px faces, ~0.025 at 50-70 px;
# the generated ID card held up to the camera shows its portrait at 54-80 px, genuine generated
# bursts never under 112 px; capture.js sends frames up to 960 px on their longest side, with
# an oval 40 % of the frame's width: a face filling it is some 150-380 px wide).
MIN_FACE_PX = SELFIE.min_face
PASSIVE_REVIEW = 0.6    # passive attack score sending to review (never a fail alone)


@dataclass
class LivenessResult:
    outcome: str                  # "pass" | "review" | "fail"
    reason_code: str | None
    score: float                  # 0..1, higher = more confidently live
    detail: dict = field(default_factory=dict)  # JSON-safe, no vectors


def _timing(stamps: list[int], count: int, ttl_ms: int) -> str | None:
    if not stamps:
        return "liveness_no_timing"
    if len(stamps) != count or not all(isinstance(t, int) and not isinstance(t, bool)
                                       for t in stamps):
        return "liveness_timing"
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    if any(g < MIN_GAP_MS for g in gaps) or stamps[-1] - stamps[0] > ttl_ms:
        return "liveness_timing"
    return None


def _pose(m: FrameMeasures, base: dict) -> str | None:
    du, dv = m.u - base["u"], m.v - base["v"]
    if abs(du) >= TURN_DELTA and abs(du) >= -dv:
        return "turn_left" if du > 0 else "turn_right"
    if -dv >= LOOK_UP_DELTA:
        return "look_up"
    return None


def _shut(m: FrameMeasures, base: dict, open_ear: float) -> bool:
    """Eyes shut: the EAR well below the open-eye EAR, or the eye patches no longer like the
    open eyes of the first frames."""
    if m.ear < open_ear * BLINK_RATIO and m.ear < open_ear - min(BLINK_DROP, 0.2 * open_ear):
        return True
    return _eyes(m, base) < BLINK_EYES


def _eyes(m: FrameMeasures, base: dict) -> float:
    """The eye patches' likeness to the first frames' open eyes (1 without patches)."""
    ref = base.get("eyes")
    return 1.0 if m.eyes is None or ref is None else eye_similarity(m.eyes, ref)


def _labels(ms: list[FrameMeasures | None], base: dict) -> list[str | None]:
    """Per frame: a pose action, "blink", "neutral", or None (no face). The open-eye EAR is the
    median over the frames facing the camera (the person's own, not a population constant)."""
    poses = [None if m is None else _pose(m, base) for m in ms]
    facing = [m.ear for m, p in zip(ms, poses, strict=True) if m is not None and p is None]
    base["ear"] = float(np.median(facing)) if facing else base["ear"]
    out = []
    for m, pose in zip(ms, poses, strict=True):
        if m is None:
            out.append(None)
        elif pose:
            out.append(pose)
        elif _shut(m, base, base["ear"]):
            out.append("blink")
        else:
            out.append("neutral")
    return out


def _toward(m: FrameMeasures, base: dict, action: str) -> float:
    """How far a frame turned towards `action` (a turn), in shares of `TURN_DELTA`."""
    du = m.u - base["u"]
    return (du if action == "turn_left" else -du) / TURN_DELTA


def step_labels(labels: list[str | None], ms: list[FrameMeasures | None], base: dict,
                actions: list[str], steps: list[tuple[int, int]]) -> list[str | None]:
    """Within a step asking for a head turn, a frame read as looking up that also moved at
    least `STEP_TOWARD` of the way towards the asked turn is a diagonal movement (a real head
    turns and tilts at once, and dlib's nose point also moves up in some turned faces, e.g.
    with glasses): it counts as the asked turn. Only that way round: a turn comes with some
    vertical nose movement, so a turned frame never counts as looking up. Once a turn step
    shows the asked turn in at least as many frames as any other movement, its other frames
    read as looking up count as that turn too, and once any step shows its asked action that
    way, frames of another head movement in it are neutral (a slipped landmark; a step holding
    another step's movement, as in reordered frames, keeps its labels and fails; a blink step
    keeps any head movement, which the challenge did not ask for there). Frames
    showing no
    movement are never changed (a flat picture, which shows no parallax, gains nothing), and a
    step holding another step's movement (reordered frames) shows none towards the asked one.
    A pose read during the look straight stays an unrequested movement: a flat picture's
    landmarks jump, and the look straight is where that shows.
    In a blink step, a frame facing the camera is also a blink against the step's own open-eye
    EAR (the upper quartile of its frames facing the camera) when that is above the burst's, or
    when its eye patches are `BLINK_EYES_STEP` less like the first frames' open eyes than the
    step's most open frame's are."""
    out = list(labels)
    for action, (lo, hi) in zip(actions, steps[1:], strict=True):
        if action == "blink":
            # the open eye also from this step's own frames facing the camera when they read
            # wider than the burst's median (dlib's eye contour is noisy on small eyes); their
            # upper quartile, as one or two of a blink step's four frames are shut; only frames
            # whose eyes also look open (dlib's contour can spread around a shut eye's lashes)
            open_ = [ms[i].ear for i in range(lo, hi) if out[i] in ("neutral", "blink")
                     and _eyes(ms[i], base) >= BLINK_EYES]
            ref = max(base["ear"], float(np.percentile(open_, 75))) if open_ else base["ear"]
            # and against the step's own most open eyes: a small eye shut loses little of its
            # patch (eyelid and lashes where a thin dark slit was), less than BLINK_EYES asks,
            # but still clearly more than the frame-to-frame noise of open eyes (~0.01)
            # (the step's most open frame, when its eyes look open, is the open reference of
            # both: it stays open)
            facing = [i for i in range(lo, hi) if out[i] in ("neutral", "blink")]
            widest = max(facing, key=lambda i: _eyes(ms[i], base), default=None)
            top = _eyes(ms[widest], base) if widest is not None else 0.0
            if top < BLINK_EYES:
                widest = None
            for i in range(lo, hi):
                if out[i] == "neutral" and i != widest and (_shut(ms[i], base, ref) or (
                        widest is not None and _eyes(ms[i], base) < top - BLINK_EYES_STEP)):
                    out[i] = "blink"
            faces = [i for i in range(lo, hi) if out[i] is not None]
            if faces and all(out[i] == "blink" for i in faces):
                # a blink closes and opens the eyes within the step's ~0.5 s: eyes that never
                # look open (closed throughout, or unlike the first frames' eyes: another
                # person) are not one
                for i in faces:
                    out[i] = "neutral"
            continue
        if action not in ("turn_left", "turn_right"):
            continue
        for i in range(lo, hi):
            if out[i] == "look_up" and _toward(ms[i], base, action) >= STEP_TOWARD:
                out[i] = action
        if _dominates(out[lo:hi], action):
            # the step shows the asked turn: its other frames read as looking up are the
            # same movement (the head also nods while turning, or dlib's nose point jumps)
            for i in range(lo, hi):
                if out[i] == "look_up":
                    out[i] = action
    for action, (lo, hi) in zip(actions, steps[1:], strict=True):
        if action in POSE_ACTIONS and _dominates(out[lo:hi], action):
            # the asked movement is there: a lone frame of another movement in the same step is
            # a slipped landmark or a drift, not another action (not in a blink step: a head
            # movement there is one the challenge did not ask for, e.g. another session's)
            for i in range(lo, hi):
                if out[i] in POSE_ACTIONS and out[i] != action:
                    out[i] = "neutral"
    return out


def moved_again(labels: list[str | None]) -> bool:
    """A head movement in a blink step after the face was back facing the camera (a frame read
    neutral or blinking): not asked for there. `match_actions` lets the previous step's movement
    seen again pass as the same one held (the head still coming back at the step's start), but
    once the face has come back, the same movement again is a new one: a flat picture's
    landmarks jumping, as a held-up card's do."""
    back = False
    for label in labels:
        if label in ("neutral", "blink"):
            back = True
        elif label in POSE_ACTIONS and back:
            return True
    return False


def _dominates(labels: list[str | None], action: str) -> bool:
    """The step shows the asked action in at least as many frames as any other head movement:
    then the others are noise. A step holding another step's movement (reordered frames) with
    one noisy frame of the asked one does not qualify."""
    seen = labels.count(action)
    return seen > 0 and all(labels.count(p) <= seen for p in POSE_ACTIONS if p != action)


def events(labels: list[str | None]) -> list[str]:
    """Runs of equal non-neutral labels, in order (a frame without a face does not break a
    run)."""
    out: list[str] = []
    last = None
    for label in labels:
        if label is None:
            continue
        if label != "neutral" and label != last:
            out.append(label)
        last = label
    return out


def match_actions(seen: list[str], actions: list[str]) -> str | None:
    """None when `actions` occur in `seen` in order with no unrequested head movement (a pose
    event repeating the previous pose event, blinks aside, is the same movement); else the
    reason code."""
    i = 0
    extra = []
    last_pose = None
    for event in seen:
        if i < len(actions) and event == actions[i]:
            i += 1
        elif event in POSE_ACTIONS and event != last_pose:
            # an unrequested blink is fine (people blink), and so is the same head movement
            # seen again right after itself (one frame of a held turn read as neutral)
            extra.append(event)
        if event in POSE_ACTIONS:
            last_pose = event
    if i == len(actions) and not extra:
        return None
    if set(actions) <= set(seen):
        return "liveness_order"
    return "liveness_action_missing" if i < len(actions) else "liveness_order"


def segments(stamps: list[int], count: int) -> list[tuple[int, int]] | None:
    """The capture steps, as (start, end) frame index ranges, split at the pauses between
    steps (`STEP_PAUSE_MS`); None unless the timestamps show exactly `count` steps."""
    if len(stamps) < count or count < 1:
        return None
    cuts = [i + 1 for i, (a, b) in enumerate(itertools.pairwise(stamps))
            if b - a >= STEP_PAUSE_MS]
    if len(cuts) != count - 1:
        return None
    bounds = [0, *cuts, len(stamps)]
    return list(itertools.pairwise(bounds))


def same_face_sample(idx: list[int], steps: list[tuple[int, int]] | None,
                     posed: dict[int, float] | None = None) -> list[int]:
    """The face frames whose embeddings the same-face check uses: the first two faces (the
    anchor), then per capture step after the first one face: the least `posed` (how far the
    frame is from looking straight at the camera with open eyes; dlib's embedding moves with
    pose, so a frontal frame tells people apart best), ties to the nearest the step's middle;
    or, without steps, every third face after the anchor."""
    out = list(idx[:2])
    if steps:
        for lo, hi in steps[1:]:
            inside = [i for i in idx[2:] if lo <= i < hi]
            if inside:
                mid = (lo + hi - 1) / 2
                out.append(min(inside, key=lambda i: (round((posed or {}).get(i, 0.0), 2),
                                                      abs(i - mid), i)))
    else:
        out += idx[2::3]
    return out


def _static(ms: list[FrameMeasures]) -> float:
    """Largest RMS landmark displacement (interocular units) from the first face."""
    first = ms[0].shape
    return max(float(np.sqrt(((m.shape - first) ** 2).sum(axis=1).mean())) for m in ms)


def verify(burst, actions: list[str], *, timestamps_ms: list[int], reference=None,
           matcher=None, ttl_ms: int = DEFAULT_TTL_MS, passive: bool = True) -> LivenessResult:
    """Check a selfie burst (`ekyc.face.frames.Burst`, frames in capture order) against the
    challenge `actions`. `reference`: the card portrait's `Encoding`, or None. `matcher`: the
    one that encoded the burst (for distances; default: Euclidean on the vectors)."""
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown or not actions:
        raise ValueError(f"unknown or no actions: {unknown or actions}")
    detail: dict = {"actions": list(actions), "frames": len(burst.faces)}

    def done(outcome, reason, score):
        detail["reason"] = REASONS.get(reason) if reason else None
        return LivenessResult(outcome, reason, round(float(score), 3), detail)

    timing = _timing(list(timestamps_ms or []), len(burst.faces), ttl_ms)
    detail["timing"] = timing or "ok"
    if timing == "liveness_timing":
        return done("fail", timing, 0.0)

    faces = [f if f is not None and f.box[2] >= MIN_FACE_PX else None for f in burst.faces]
    idx = [i for i, f in enumerate(faces) if f is not None]
    detail["faces"] = len(idx)
    detail["small_faces"] = sum(f is not None for f in burst.faces) - len(idx)
    if len(idx) < max(3, MIN_FACE_SHARE * len(faces)) or faces[0] is None:
        return done("fail", "liveness_too_few_faces", 0.0)

    # Landmark measures and per-frame labels first (cheap): the same-face check needs to know
    # which frames face the camera.
    ms = [measure(f.landmarks, f.rgb) if f is not None else None for f in faces]
    present = [m for m in ms if m is not None]
    # The reference pose and open eyes: the frames of the look straight at the camera
    # (capture.js takes 3, so that one frame whose landmarks slipped does not move the median),
    # or the first two faces when the timestamps do not show the steps.
    steps = segments(list(timestamps_ms or []), len(actions) + 1)
    first = [ms[i] for i in range(*steps[0]) if ms[i] is not None] if steps else []
    first = first or present[:2]
    base = {"u": float(np.median([m.u for m in first])),
            "v": float(np.median([m.v for m in first])),
            "ear": float(np.median([m.ear for m in first]))}
    if all(m.eyes is not None for m in first):
        base["eyes"] = normalise_patches(np.mean([m.eyes for m in first], axis=0))
    labels = _labels(ms, base)

    # Same face throughout. Encoding costs ~74 ms a frame (the stage's main cost), so only a
    # sample is encoded: the first two faces (the anchor, the look straight at the camera) and
    # one face per capture step (its least turned one with open eyes), or every third face when
    # the timestamps do not show the steps. Another person during a step (a whole step swapped)
    # is still seen. Any sampled frame at the fail distance from the anchor fails, any at the
    # review distance goes to an officer: a turned head moves dlib's embedding somewhat (0.43
    # at the 99th percentile of generated bursts with a real head's geometry), another person
    # rarely stays under 0.55 (faces-dev: 1 of 75 swaps), and a face not clearly the same is
    # never passed.
    def dist(a, b):
        if matcher is not None:
            return matcher.distance(a, b)
        return float(np.linalg.norm(np.asarray(a.vector) - np.asarray(b.vector)))

    posed = {i: max(abs(m.u - base["u"]) / TURN_DELTA, abs(m.v - base["v"]) / LOOK_UP_DELTA)
             + (labels[i] == "blink") for i, m in enumerate(ms) if m is not None}
    sample = same_face_sample(idx, steps, posed)
    detail["same_face_frames"] = sample
    encs = [burst.encodings[i] for i in idx[:2]]
    anchor_vec = np.mean([np.asarray(e.vector) for e in encs], axis=0)
    anchor = type(encs[0])(anchor_vec, encs[0].box, 1, encs[0].model) \
        if hasattr(encs[0], "model") else encs[0]
    dists = [dist(anchor, e) for e in encs]
    dists += [dist(anchor, burst.encodings[i]) for i in sample[2:]]
    facing = [d for d, i in zip(dists, sample, strict=True) if labels[i] == "neutral"]
    detail["same_face_max_distance"] = round(max(dists), 3)
    detail["same_face_max_distance_facing"] = round(max(facing), 3) if facing else None
    if max(dists) >= SAME_FACE_FAIL:
        return done("fail", "liveness_face_changed", 0.0)
    review: list[str] = []
    if max(dists) >= SAME_FACE_REVIEW:
        review.append("liveness_face_uncertain")
    if reference is not None:
        # the card holder against the anchor (the frames looking straight at the camera)
        ref_d = dist(reference, anchor)
        detail["reference_distance"] = round(ref_d, 3)
        if ref_d >= REFERENCE_FAIL:
            return done("fail", "liveness_not_card_holder", 0.0)

    motion = _static(present)
    detail["landmark_motion"] = round(motion, 4)
    if motion < STATIC_MOTION:
        return done("fail", "liveness_static", 0.0)

    if steps:
        labels = step_labels(labels, ms, base, actions, steps)
    seen = events(labels)
    detail.update(labels=labels, events=seen,
                  du=[None if m is None else round(m.u - base["u"], 3) for m in ms],
                  dv=[None if m is None else round(m.v - base["v"], 3) for m in ms],
                  ear=[None if m is None else round(m.ear, 3) for m in ms],
                  eyes=[None if m is None else round(_eyes(m, base), 3) for m in ms])
    reason = match_actions(seen, list(actions))
    if reason:
        return done("fail", reason, 0.1)
    # With capture.js's step structure in the timestamps (a pause before each step), each
    # action must also show within its own step: frames put in another order, with a stray
    # blink-like frame (a turned face narrows the eyes), cannot pass on event order alone.
    detail["steps"] = "ok" if steps else "unstructured"
    if steps:
        for action, (lo, hi) in zip(actions, steps[1:], strict=True):
            if action not in labels[lo:hi] or (action == "blink"
                                               and moved_again(labels[lo:hi])):
                return done("fail", "liveness_order", 0.1)

    strengths = []
    for action in actions:
        if action == "turn_left":
            s = max(m.u - base["u"] for m in present) / TURN_DELTA
        elif action == "turn_right":
            s = max(base["u"] - m.u for m in present) / TURN_DELTA
        elif action == "look_up":
            s = max(base["v"] - m.v for m in present) / LOOK_UP_DELTA
        else:
            s = max((base["ear"] - min(m.ear for m in present)) / (base["ear"] * (1 - BLINK_RATIO)),
                    (1 - min(_eyes(m, base) for m in present)) / (1 - BLINK_EYES))
        strengths.append(min(s, 2.0) / 2)
    score = 0.5 + 0.5 * float(np.mean(strengths))

    if passive:
        from ekyc.liveness import passive as pad

        result = pad.score(faces[idx[0]])
        detail["passive"] = {"attack_score": round(result.attack_score, 3),
                             "cues": result.cues}
        # hand-set cues, not trained (APCER 0.6 on the 7 labelled attack images, and they
        # misfired on some genuine frames): they send to an officer, never fail on their own
        if result.attack_score >= PASSIVE_REVIEW:
            review.append("liveness_passive_attack")
        score *= 1 - 0.5 * result.attack_score
    if timing == "liveness_no_timing":
        review.insert(0, timing)
    if review:
        detail["review"] = review
        return done("review", review[0], score)
    return done("pass", None, score)


__all__ = ["ACTIONS", "REASONS", "LivenessResult", "events", "match_actions", "moved_again",
           "same_face_sample", "segments", "verify"]
