"""Calibrated decision thresholds of a face model, stored with the model's name and version.

`thresholds.json` (next to this module) is written by `python -m ekyc.face.calibrate` from a
labelled face set. A comparison has three outcomes (DOMAIN.md section 5):

- accept: `distance < strict`; `strict` is set so that at most `target_fmr` (1 in 10,000,
  DOMAIN.md section 4) of the impostor pairs of every group fall below it;
- reject: `distance >= loose`; `loose` is set so that at most `max_genuine_reject` (1%) of the
  genuine pairs of every group reach it;
- review (a human compares the faces): in between.

A group with too few impostor pairs to observe the target gets a conservative estimate (see
`ekyc.face.calibrate`). A citizen's group is not known at run time, so one pair of thresholds
serves everyone: the lowest per-group strict and the highest per-group loose. Thresholds
belong to one model: `load(model)` refuses a file made for another name or version.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ekyc.face.matcher import ModelInfo

DEFAULT_PATH = Path(__file__).with_name("thresholds.json")
ACCEPT, REVIEW, REJECT = "accept", "review", "reject"


class ThresholdsError(RuntimeError):
    """No usable thresholds for this model (missing file, other model or version)."""


@dataclass(frozen=True)
class Thresholds:
    """`strict`: below it two faces are accepted as the same person; `loose`: at or above it
    they are rejected as different people; in between a human reviews them."""

    model: ModelInfo
    strict: float
    target_fmr: float
    loose: float | None = None
    max_genuine_reject: float = 0.01
    provisional: bool = True
    groups: dict = field(default_factory=dict)
    path: str | None = None

    def __post_init__(self):
        if self.loose is None:  # a two-outcome file: nothing between accept and reject
            object.__setattr__(self, "loose", self.strict)
        if self.loose < self.strict:
            raise ThresholdsError(f"loose {self.loose} below strict {self.strict}")

    def outcome(self, distance: float) -> str:
        """"accept" (distance < strict), "reject" (distance >= loose) or "review"."""
        if not math.isfinite(distance):
            raise ValueError("distance must be a finite number")
        if distance < self.strict:
            return ACCEPT
        if distance >= self.loose:
            return REJECT
        return REVIEW

    def to_dict(self) -> dict:
        return {"model": {"name": self.model.name, "version": self.model.version},
                "strict": self.strict, "loose": self.loose, "target_fmr": self.target_fmr,
                "max_genuine_reject": self.max_genuine_reject, "provisional": self.provisional}


def load(model: ModelInfo, path: str | Path | None = None) -> Thresholds:
    """The thresholds calibrated for `model` (name and version must match)."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        stored = ModelInfo(str(data["model"]["name"]), str(data["model"]["version"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ThresholdsError(f"cannot read face thresholds {path}: {exc}") from exc
    if stored != model:
        raise ThresholdsError(f"{path} was calibrated for {stored}, not {model}: "
                              "run python -m ekyc.face.calibrate")
    loose = data.get("loose")
    return Thresholds(model=stored, strict=float(data["strict"]),
                      target_fmr=float(data["target_fmr"]),
                      loose=float(loose) if loose is not None else None,
                      max_genuine_reject=float(data.get("max_genuine_reject", 0.01)),
                      provisional=bool(data.get("provisional", True)),
                      groups=data.get("groups", {}), path=str(path))


def strict_threshold(impostor: np.ndarray, target_fmr: float) -> tuple[float | None, str, int]:
    """(threshold, method, false matches allowed) for accepting `distance < threshold`.

    With N impostor distances, at most floor(target_fmr * N) may fall below the threshold, so
    it is the (k+1)-th smallest. With fewer than 1 / target_fmr pairs no false match may be
    allowed and the rate cannot be observed: the threshold is then the lowest impostor
    distance (method `lowest_impostor`), the best this data can say."""
    values = np.sort(np.asarray(impostor, dtype=np.float64))
    if values.size == 0:
        return None, "no_impostor_pairs", 0
    if values.size < math.ceil(1 / target_fmr):
        return float(values[0]), "lowest_impostor", 0
    allowed = math.floor(target_fmr * values.size)
    return float(values[allowed]), "fmr_quantile", allowed


def loose_threshold(genuine: np.ndarray, max_reject: float = 0.01) -> tuple[float | None, int]:
    """(threshold, genuine rejections allowed) for rejecting `distance >= threshold`: at most
    floor(max_reject * N) of the N genuine distances reach it. It lies just above the
    (k+1)-th largest genuine distance (rounded up to 4 decimals, so ties stay below it)."""
    values = np.sort(np.asarray(genuine, dtype=np.float64))[::-1]
    if values.size == 0:
        return None, 0
    allowed = math.floor(max_reject * values.size)
    boundary = float(values[allowed])
    loose = math.ceil(boundary * 10_000) / 10_000
    if loose <= boundary:
        loose = round(loose + 1e-4, 4)
    return loose, allowed


def rates(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> dict:
    """Measured rates when `distance < threshold` is accepted."""
    genuine = np.asarray(genuine, dtype=np.float64)
    impostor = np.asarray(impostor, dtype=np.float64)
    out = {"threshold": round(threshold, 4), "genuine_pairs": int(genuine.size),
           "impostor_pairs": int(impostor.size)}
    if genuine.size:
        accepted = int((genuine < threshold).sum())
        out["genuine_accepted"] = accepted
        out["genuine_accept_rate"] = round(accepted / genuine.size, 4)
        out["false_non_match_rate"] = round(1 - accepted / genuine.size, 4)
    if impostor.size:
        matched = int((impostor < threshold).sum())
        out["impostor_accepted"] = matched
        out["false_match_rate"] = round(matched / impostor.size, 6)
    return out


def outcome_rates(genuine: np.ndarray, impostor: np.ndarray, strict: float,
                  loose: float) -> dict:
    """The three-outcome figures of `ekyc evaluate-faces` for one set of pairs."""
    genuine = np.asarray(genuine, dtype=np.float64)
    impostor = np.asarray(impostor, dtype=np.float64)

    def share(n: int, total: int):
        return round(n / total, 6) if total else None

    g_acc = int((genuine < strict).sum())
    g_rej = int((genuine >= loose).sum())
    i_acc = int((impostor < strict).sum())
    i_rej = int((impostor >= loose).sum())
    g_rev, i_rev = genuine.size - g_acc - g_rej, impostor.size - i_acc - i_rej
    return {"genuine_pairs": int(genuine.size), "impostor_pairs": int(impostor.size),
            "fmr_accept": share(i_acc, impostor.size),
            "impostor_review_rate": share(i_rev, impostor.size),
            "fnmr_reject": share(g_rej, genuine.size),
            "review_rate_genuine": share(g_rev, genuine.size),
            "genuine_accept_rate": share(g_acc, genuine.size),
            "counts": {"genuine_accept": g_acc, "genuine_review": g_rev, "genuine_reject": g_rej,
                       "impostor_accept": i_acc, "impostor_review": i_rev,
                       "impostor_reject": i_rej}}
