"""The biometric checks of the policy (issue 4), filling its three slots.

    selfie frames --analyse once (ekyc.face.frames.analyse_burst)--> Burst
        face_match: the fused selfie against the card's portrait and the register's portrait,
                    three outcomes at the calibrated thresholds (ekyc.face.compare)
        liveness:   the random challenge answered in order, the same face throughout, no frames
                    replayed from another case, passive cues (ekyc.liveness); at a counter,
                    the operator's attestation that the citizen is present in person
        duplicate:  the fused selfie searched in the 1:N index of approved faces; a face enrolled
                    under another account (another ID number) is a suspected duplicate identity
                    and goes to an officer (ekyc.face.index)

Each is a function `(evidence) -> policy.Result` registered by `install(app)` in
`app.extensions` (`ekyc.face_matcher`, `ekyc.liveness`, `ekyc.face_index`); tests may put
others there. The Burst, the card's encoding and the fused template are computed once per run
and shared through the evidence object. When a case's account is issued, its template joins
the index (`enroll`), in the same transaction.

A selfie frame's perceptual fingerprints are stored when the frames arrive
(`record_frame_prints`); frames that are near-identical to frames of ANOTHER case are a replay.
"""

from __future__ import annotations

import logging

from flask import current_app

from idp.extensions import db

from . import policy
from .models import FramePrint

log = logging.getLogger(__name__)

# The "challenge" a counter case's frames answer: no actions, the operator attested that the
# citizen stood in front of them (`ekyc.review.counter`); the liveness check records it.
IN_PERSON = "in_person"

# A replay: at least this share of the case's frames (and at least REPLAY_MIN_FRAMES) are
# near-identical to frames of one other case.
REPLAY_MIN_SHARE = 0.5
REPLAY_MIN_FRAMES = 2


def install(app) -> None:
    app.extensions.setdefault("ekyc.face_matcher", face_match)
    app.extensions.setdefault("ekyc.liveness", liveness)
    app.extensions.setdefault("ekyc.face_index", duplicate_face)


def _matcher():
    matcher = current_app.extensions.get("ekyc.matcher")
    if matcher is None:
        from .face import default_matcher

        matcher = default_matcher()
    return matcher


# -- shared per-run analysis (cached on the evidence object) ----------------------------------

def burst(ev):
    cached = getattr(ev, "_bio_burst", None)
    if cached is None:
        from .face.frames import analyse_burst

        cached = analyse_burst(ev.images("selfie"), _matcher())
        ev._bio_burst = cached
    return cached


def comparison(ev):
    """The selfie-versus-card (and register) comparison of this run."""
    cached = getattr(ev, "_bio_comparison", None)
    if cached is None:
        from .face.compare import compare_selfie

        national_id = ev.identity_fields().get("national_id")
        register = ev.register_portrait() if national_id else None
        known = getattr(ev, "portrait_encodings", None) or {}  # from the portrait check
        matcher = _matcher()
        same_model = {k: e for k, e in known.items() if e is not None and e.model == matcher.model}
        cached = compare_selfie(burst(ev), ev.card_portrait(), register, matcher=matcher,
                                card_encoding=same_model.get("card"),
                                register_encoding=same_model.get("register"))
        ev._bio_comparison = cached
    return cached


def template(ev):
    """The fused selfie encoding (what enters the 1:N index), or None without a usable face."""
    return getattr(comparison(ev), "fused", None)


def _card_encoding(ev):
    return getattr(comparison(ev), "card_encoding", None)


# -- the checks -----------------------------------------------------------------------------

_FACE_REASON = {"selfie_no_face": policy.FAIL, "selfie_quality": policy.FAIL,
                "portrait_no_face": policy.REVIEW, "face_mismatch": policy.FAIL,
                "face_uncertain": policy.REVIEW}


def face_match(ev) -> policy.Result:
    """The selfie is the card holder: accept below the strict threshold, officer between,
    reject at or above the loose one (and for a selfie without a usable face: take it again)."""
    result = comparison(ev)
    measured = {"score": result.distance_card, "threshold": result.strict,
                "version": str(result.model)[:64]}
    detail = dict(result.detail or {})
    detail.update(outcome=result.outcome, distance_card=result.distance_card,
                  distance_register=result.distance_register, strict=result.strict,
                  loose=result.loose, frames_used=result.frames_used)
    if result.outcome == "accept":
        return policy.Result(policy.PASS, detail=detail, **measured)
    code = result.reason_code or ("face_mismatch" if result.outcome == "reject" else
                                  "face_uncertain")
    outcome = _FACE_REASON.get(code, policy.REVIEW)
    if result.outcome == "review" and outcome == policy.FAIL:
        outcome = policy.REVIEW  # the comparison asked for an officer: never harsher here
    return policy.Result(outcome, code, detail=detail, **measured)


def liveness(ev) -> policy.Result:
    """The frames answer this case's random challenge (`ekyc.liveness.verify`) and were not
    captured for another case."""
    from .liveness import verify

    challenge = ev.challenge()
    if challenge is None:
        return policy.Result(policy.FAIL, "liveness_no_challenge")
    if in_person(ev.case, challenge):
        return policy.Result(policy.PASS, score=1.0, version="liveness/in_person",
                             detail={"method": IN_PERSON,
                                     "operator_id": ev.case.counter_operator_id})
    replay = replayed_from(ev.case.id)
    if replay:
        return policy.Result(policy.FAIL, "liveness_replayed", score=1.0,
                             threshold=REPLAY_MIN_SHARE, detail=replay)
    result = verify(burst(ev), list(challenge.actions or []),
                    timestamps_ms=list(challenge.timestamps_ms or []),
                    reference=_card_encoding(ev), matcher=_matcher())
    outcome = {"pass": policy.PASS, "review": policy.REVIEW}.get(result.outcome, policy.FAIL)
    detail = {"actions": list(challenge.actions or []), **(result.detail or {})}
    return policy.Result(outcome, None if outcome == policy.PASS else result.reason_code,
                         score=result.score, detail=detail,
                         version=f"liveness/{getattr(result, 'version', '1')}"[:64])


def in_person(case, challenge) -> bool:
    """A counter case whose frames were stored with the operator's in-person attestation.

    The counter camera is operated by the operator who watched the citizen: there is no
    remote capture to inject frames into, so neither the challenge nor the replay search
    applies; the face match against the card and the register still runs as usual."""
    return (case.channel == "counter" and bool(case.counter_operator_id) and
            list(challenge.actions or []) == [IN_PERSON])


def duplicate_face(ev) -> policy.Result:
    """No approved face under another account is the same person (1:N search)."""
    from .face.index import search

    fused = template(ev)
    if fused is None:
        # No usable selfie face: the face check has already rejected or sent it to an officer.
        return policy.Result(policy.REVIEW, "duplicate_search_no_face")
    strict = comparison(ev).strict
    limit = duplicate_threshold(strict)
    candidates = search(fused, k=5, exclude_account_id=_own_account_id(ev))
    close = [c for c in candidates if c.distance < limit]  # one per account, nearest first
    detail = {"searched": True, "threshold": limit, "nearest": (
        round(float(candidates[0].distance), 4) if candidates else None),
        "candidates": [{"account_id": c.account_id, "case_id": c.case_id,
                        "distance": round(float(c.distance), 4)} for c in close]}
    score = float(candidates[0].distance) if candidates else None
    if close:
        return policy.Result(policy.REVIEW, "duplicate_face_suspected", score=score,
                             threshold=limit, detail=detail, version=str(fused.model)[:64])
    return policy.Result(policy.PASS, score=score, threshold=limit, detail=detail,
                         version=str(fused.model)[:64])


def _own_account_id(ev) -> str | None:
    """The account whose faces are the citizen's own: the case's, or the level-1 account a
    counter case raises to level 2 (its enrolled face is the same person, not a duplicate)."""
    if ev.case.account_id:
        return ev.case.account_id
    from . import issuance

    national_id = ev.identity_fields().get("national_id")
    account = issuance.find_account(national_id) if national_id else None
    return account.id if issuance.raises_level(ev.case, account) else None


def duplicate_threshold(strict: float) -> float:
    """Distance below which an enrolled face is a suspected duplicate: the matcher's strict
    (1:1, FMR <= 1e-4) threshold unless `EKYC_DUPLICATE_THRESHOLD` sets another.

    The choice favours catching duplicates over sparing officers: a false candidate costs a
    review, a missed one lets a person hold two identities. With dlib the price grows with the
    number N of enrolled faces: N x FMR(t) false candidates per search, ~5 at N = 1,000,000 at
    the strict threshold on faces-dev's impostor pairs (bench/README.md); a lower threshold
    misses most true duplicates (at 0.35 faces-dev's genuine pairs are found 18% of the time).
    1:N at national scale needs a stronger model behind the `Matcher` interface."""
    configured = current_app.config.get("EKYC_DUPLICATE_THRESHOLD")
    return float(configured) if configured else float(strict)


# -- enrolment ------------------------------------------------------------------------------

def enroll(ev, account_id: str) -> bool:
    """Put the case's fused selfie template in the index under `account_id` (caller commits).
    False when the case has no usable selfie face (nothing to enrol)."""
    from .face.templates import enroll as enroll_template

    fused = template(ev) if ev.images("selfie") else None
    if fused is None:
        return False
    enroll_template(account_id, ev.case.id, fused)
    return True


# -- replay fingerprints --------------------------------------------------------------------

def record_frame_prints(case_id: str, challenge_id: str, frames: list[bytes]) -> None:
    """Store the perceptual fingerprints of a case's selfie frames (caller commits)."""
    from .liveness.replay import fingerprint

    for index, data in enumerate(frames):
        value = fingerprint(data)  # decodes like the face analysis does
        db.session.add(FramePrint.of(case_id, challenge_id, index, value))


def replayed_from(case_id: str) -> dict | None:
    """{"other_case": id, "frames": n, "of": m} when enough of this case's latest frames are
    near-identical to frames of one other case, else None. Each 64-bit fingerprint is split in
    four 16-bit bands: two fingerprints within 3 bits of each other share at least one band,
    so candidates come from an indexed equality query and are then compared bit by bit."""
    from .liveness.replay import near

    mine = FramePrint.latest_of_case(case_id)
    if not mine:
        return None
    counts: dict[str, set[int]] = {}
    for own in mine:
        for other in FramePrint.band_candidates(own, exclude_case=case_id):
            if near(own.value, other.value):
                counts.setdefault(other.case_id, set()).add(own.frame)
    if not counts:
        return None
    other, frames = max(counts.items(), key=lambda item: len(item[1]))
    if len(frames) >= max(REPLAY_MIN_FRAMES, REPLAY_MIN_SHARE * len(mine)):
        return {"other_case": other, "frames": len(frames), "of": len(mine)}
    return None


__all__ = ["IN_PERSON", "comparison", "duplicate_face", "enroll", "face_match", "in_person",
           "install", "liveness", "record_frame_prints", "replayed_from", "template"]
