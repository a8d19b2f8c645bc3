"""Liveness: an active challenge checked with landmarks, replay fingerprints and passive cues
(DOMAIN.md section 6). See `check.verify`, `replay`, `passive`, `synth` and `evaluate`.

None of this detects a virtual camera or a good real-time deepfake: `verify` takes one burst and
its passive step is `passive.score`, the place where a stronger presentation attack detector
plugs in (anything with `score(face) -> PassiveResult`).
"""

from ekyc.liveness.check import ACTIONS, REASONS, LivenessResult, verify

__all__ = ["ACTIONS", "REASONS", "LivenessResult", "verify"]
