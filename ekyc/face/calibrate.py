"""Calibration of the face matcher's three-outcome thresholds on a labelled face set.

    uv run python -m ekyc.face.calibrate                      # faces-dev, writes thresholds.json
    uv run python -m ekyc.face.calibrate DIR --out FILE --json

DIR holds `manifest.json` (rows `file`, `identity`, `group`, as in
`../shared/data/faces-dev`; default `$EKYC_TEST_DATA/faces-dev`). Every image is encoded with
the default matcher (images without a detectable face are listed and left out); every pair of
images forms a genuine pair (same identity) or an impostor pair, per group (a pair counts in
a group when both faces are in it) and over `all` pairs.

- strict (accept below): per group, the distance below which at most `--target-fmr` (1e-4) of
  the impostor pairs fall (`fmr_quantile`). A group with fewer than 1 / target impostor pairs
  cannot show that rate: its lowest impostor distance is only an upper bound, so the
  threshold is the lower of it and a normal fit of the impostor distances' tail at the target
  (`normal_tail`; on the groups large enough to check, the fit lands within 0.01 of the
  observed quantile). The strict threshold used is the lowest group's.
- loose (reject at or above): per group, just above the distance that at most
  `--max-reject` (1%) of the genuine pairs reach; the loose threshold used is the highest.
- A citizen's group is unknown at run time, hence one pair of thresholds for all.
- `cross_validation`: the same rules calibrated on 4/5 of the identities and measured on the
  other 1/5 (identity-disjoint folds, per group), pooled over the 5 folds: what to expect on
  faces not seen at calibration, unlike the `at_used` figures measured on the same data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from statistics import NormalDist

import numpy as np

from ekyc.face import thresholds as th
from ekyc.face.evaluate import default_jobs, encode_rows, pair_distances, read_manifest
from ekyc.face.matcher import Matcher, default_matcher

FOLDS = 5


def default_faces_dir() -> Path:
    root = os.environ.get("EKYC_TEST_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[3] / "shared" / "data"
    return base / "faces-dev"


def _floor4(x: float) -> float:
    """Round down to 4 decimals (never accept more than calibrated)."""
    return float(np.floor(x * 10_000) / 10_000)


def normal_tail(impostor: np.ndarray, target_fmr: float) -> float | None:
    """The `target_fmr` quantile of a normal fitted to the impostor distances."""
    if impostor.size < 30:
        return None
    return float(impostor.mean() + impostor.std() * NormalDist().inv_cdf(target_fmr))


SMALL_GROUP_RULES = ("normal_tail", "lowest_impostor")


def group_strict(impostor: np.ndarray, target_fmr: float,
                 small_group: str = "normal_tail") -> tuple[float | None, str, int]:
    """(strict, method, false matches allowed) of one group (see the module docstring).
    `small_group="lowest_impostor"` keeps the lowest impostor distance of a group too small
    to observe the target (optimistic: 0 false matches in N pairs only bounds the rate by
    about 3 / N at 95% confidence)."""
    threshold, method, allowed = th.strict_threshold(impostor, target_fmr)
    if method == "lowest_impostor" and small_group == "normal_tail":
        tail = normal_tail(impostor, target_fmr)
        if tail is not None and tail < threshold:
            threshold, method = tail, "normal_tail"
    return (_floor4(threshold) if threshold is not None else None), method, allowed


def choose(pairs: dict, target_fmr: float, max_reject: float,
           small_group: str = "normal_tail") -> tuple[float, float, dict]:
    """(strict, loose, per-group entries) from pair distances per group."""
    entries = {}
    for name, d in pairs.items():
        strict, method, allowed = group_strict(d["impostor"], target_fmr, small_group)
        loose, rejects = th.loose_threshold(d["genuine"], max_reject)
        entries[name] = {"strict": strict, "method": method, "false_matches_allowed": allowed,
                         "loose": loose, "genuine_rejects_allowed": rejects}
    stricts = [e["strict"] for e in entries.values() if e["strict"] is not None]
    looses = [e["loose"] for e in entries.values() if e["loose"] is not None]
    if not stricts or not looses:
        raise ValueError("too few pairs to calibrate (need genuine and impostor pairs)")
    strict = min(stricts)
    return strict, max(max(looses), strict), entries


def folds_of(rows: list[dict], k: int = FOLDS) -> np.ndarray:
    """A fold number per row: identities dealt round-robin within each group, in sorted
    order, so every fold holds about 1/k of every group's identities."""
    fold_of: dict[str, int] = {}
    for group in sorted({str(r["group"]) for r in rows}):
        names = sorted({str(r["identity"]) for r in rows if str(r["group"]) == group})
        for i, name in enumerate(names):
            fold_of.setdefault(name, i % k)
    return np.array([fold_of[str(r["identity"])] for r in rows])


def cross_validate(rows: list[dict], vectors: np.ndarray, target_fmr: float,
                   max_reject: float, k: int = FOLDS, small_group: str = "normal_tail") -> dict:
    """Identity-disjoint k-fold figures, counts pooled over the folds, per group."""
    fold = folds_of(rows, k)
    pooled: dict[str, dict[str, int]] = {}
    used = []
    for f in range(k):
        train = [i for i in range(len(rows)) if fold[i] != f]
        test = [i for i in range(len(rows)) if fold[i] == f]
        if len(test) < 2:
            continue
        train_pairs = pair_distances([rows[i] for i in train], vectors[train])
        try:
            strict, loose, _ = choose(train_pairs, target_fmr, max_reject, small_group)
        except ValueError:
            continue
        used.append({"fold": f, "strict": strict, "loose": loose})
        test_pairs = pair_distances([rows[i] for i in test], vectors[test])
        for name, d in test_pairs.items():
            counts = th.outcome_rates(d["genuine"], d["impostor"], strict, loose)["counts"]
            total = pooled.setdefault(name, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                total[key] += value
    groups = {}
    for name, c in pooled.items():
        gen = c["genuine_accept"] + c["genuine_review"] + c["genuine_reject"]
        imp = c["impostor_accept"] + c["impostor_review"] + c["impostor_reject"]
        groups[name] = {
            "genuine_pairs": gen, "impostor_pairs": imp,
            "fmr_accept": round(c["impostor_accept"] / imp, 6) if imp else None,
            "impostor_review_rate": round(c["impostor_review"] / imp, 6) if imp else None,
            "fnmr_reject": round(c["genuine_reject"] / gen, 6) if gen else None,
            "review_rate_genuine": round(c["genuine_review"] / gen, 6) if gen else None,
            "genuine_accept_rate": round(c["genuine_accept"] / gen, 6) if gen else None,
            "counts": c}
    return {"folds": k, "split": "identity-disjoint, identities dealt round-robin per group",
            "per_fold_thresholds": used, "groups": groups}


def calibrate(folder: Path, matcher: Matcher | None = None, target_fmr: float = 1e-4,
              max_reject: float = 0.01, log=None, jobs: int = 1,
              small_group: str = "normal_tail") -> dict:
    """The thresholds document (see the module docstring); `jobs` > 1 only with the default
    matcher."""
    if matcher is not None:
        jobs = 1
    matcher = matcher or default_matcher()
    rows, vectors, missing = encode_rows(folder, read_manifest(folder), matcher, log, jobs)
    pairs = pair_distances(rows, vectors)
    strict, loose, entries = choose(pairs, target_fmr, max_reject, small_group)
    groups: dict[str, dict] = {}
    for name, d in pairs.items():
        members = [r for r in rows if name == "all" or str(r["group"]) == name]
        entry = {"images": len(members), "identities": len({r["identity"] for r in members}),
                 "genuine_pairs": int(d["genuine"].size),
                 "impostor_pairs": int(d["impostor"].size), **entries[name],
                 "lowest_impostor_distance": (round(float(d["impostor"].min()), 4)
                                              if d["impostor"].size else None),
                 "normal_tail_estimate": (round(normal_tail(d["impostor"], target_fmr), 4)
                                          if normal_tail(d["impostor"], target_fmr) else None),
                 "genuine_distance_median": (round(float(np.median(d["genuine"])), 4)
                                             if d["genuine"].size else None)}
        if entry["method"] in ("lowest_impostor", "normal_tail"):
            entry["note"] = (f"fewer than {round(1 / target_fmr)} impostor pairs: a false "
                             f"match rate of {target_fmr:g} cannot be observed; strict is the "
                             "lower of the lowest impostor distance and a normal fit of the "
                             "impostor tail")
        if entry["strict"] is not None:
            entry["at_own_strict"] = th.rates(d["genuine"], d["impostor"], entry["strict"])
        entry["at_used_strict"] = th.rates(d["genuine"], d["impostor"], strict)
        entry["at_used"] = th.outcome_rates(d["genuine"], d["impostor"], strict, loose)
        groups[name] = entry
    manifest = (folder / "manifest.json").read_bytes()
    return {
        "model": {"name": matcher.model.name, "version": matcher.model.version},
        "dlib_version": getattr(matcher, "dlib_version", None),
        "provisional": True,
        "target_fmr": target_fmr,
        "max_genuine_reject": max_reject,
        "small_group_rule": small_group,
        "strict": strict,
        "loose": loose,
        "accept_rule": "distance < strict",
        "reject_rule": "distance >= loose",
        "strict_is": "the lowest per-group strict threshold (a citizen's group is not known "
                     "at run time)",
        "loose_is": "the highest per-group loose threshold",
        "data": {"folder": folder.name, "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
                 "images_encoded": len(rows), "images_without_face": missing},
        "groups": groups,
        "cross_validation": cross_validate(rows, vectors, target_fmr, max_reject,
                                           small_group=small_group),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ekyc.face.calibrate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default=None,
                        help="face set with manifest.json (default $EKYC_TEST_DATA/faces-dev)")
    parser.add_argument("--out", default=str(th.DEFAULT_PATH),
                        help="where to write the thresholds (default: the matcher's file)")
    parser.add_argument("--target-fmr", type=float, default=1e-4)
    parser.add_argument("--max-reject", type=float, default=0.01)
    parser.add_argument("--small-group", choices=SMALL_GROUP_RULES, default="normal_tail",
                        help="strict rule for a group with too few impostor pairs to observe "
                             "the target (default normal_tail: the conservative one)")
    parser.add_argument("--json", action="store_true", help="print the document")
    args = parser.parse_args(argv)
    folder = Path(args.dir) if args.dir else default_faces_dir()
    if not (folder / "manifest.json").is_file():
        print(f"calibrate: no manifest.json in {folder}", file=sys.stderr)
        return 2
    doc = calibrate(folder, target_fmr=args.target_fmr, max_reject=args.max_reject,
                    log=lambda msg: print(msg, file=sys.stderr), jobs=default_jobs(),
                    small_group=args.small_group)
    text = json.dumps(doc, indent=1) + "\n"
    if args.out != "-":
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json or args.out == "-":
        print(text, end="")
    for name, g in doc["groups"].items():
        used = g["at_used"]
        print(f"{name}: {g['genuine_pairs']} genuine / {g['impostor_pairs']} impostor pairs, "
              f"own strict {g['strict']} ({g['method']}), own loose {g['loose']}; at "
              f"{doc['strict']}/{doc['loose']}: genuine accept {used['genuine_accept_rate']}, "
              f"review {used['review_rate_genuine']}, reject {used['fnmr_reject']}; impostors "
              f"accepted {used['counts']['impostor_accept']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
