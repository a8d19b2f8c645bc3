"""Calibrated decision thresholds of a face model, stored with the model's name and version.

`thresholds.json` (next to this module) is written by `python -m ekyc.face.calibrate` from a
labelled face set. It holds the "strict" distance: pairs closer than it are the same person
with a false match rate of at most `target_fmr` on the calibration data (DOMAIN.md section 4:
1 in 10,000). Thresholds belong to one model: `load(model)` refuses a file made for another.

The figures are PROVISIONAL (issue 3): faces-dev is small (a few thousand impostor pairs among
East/Southeast Asian faces, fewer than the 10,000 needed to observe a 1e-4 rate; the strict
distance there is the lowest impostor distance seen). Issue 4 redoes the calibration.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ekyc.face.matcher import ModelInfo

DEFAULT_PATH = Path(__file__).with_name("thresholds.json")


class ThresholdsError(RuntimeError):
    """No usable thresholds for this model (missing file, other model or version)."""


@dataclass(frozen=True)
class Thresholds:
    """`strict`: the distance below which two faces are accepted as the same person."""

    model: ModelInfo
    strict: float
    target_fmr: float
    provisional: bool = True
    groups: dict = field(default_factory=dict)
    path: str | None = None

    def to_dict(self) -> dict:
        return {"model": {"name": self.model.name, "version": self.model.version},
                "strict": self.strict, "target_fmr": self.target_fmr,
                "provisional": self.provisional}


def load(model: ModelInfo, path: str | Path | None = None) -> Thresholds:
    """The thresholds calibrated for `model` (name and version must match)."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ThresholdsError(f"cannot read face thresholds {path}: {exc}") from exc
    stored = ModelInfo(str(data["model"]["name"]), str(data["model"]["version"]))
    if stored != model:
        raise ThresholdsError(f"{path} was calibrated for {stored}, not {model}: "
                              "run python -m ekyc.face.calibrate")
    return Thresholds(model=stored, strict=float(data["strict"]),
                      target_fmr=float(data["target_fmr"]),
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
