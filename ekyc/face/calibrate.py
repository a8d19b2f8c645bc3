"""Provisional calibration of the face matcher's strict threshold on a labelled face set.

    uv run python -m ekyc.face.calibrate                      # faces-dev, writes thresholds.json
    uv run python -m ekyc.face.calibrate DIR --out FILE --json

DIR holds `manifest.json` (rows `file`, `identity`, `group`, as in
`../shared/data/faces-dev`; default `$EKYC_TEST_DATA/faces-dev`). Every image is encoded with
the default matcher (images without a detectable face are listed and left out); every pair of
images forms a genuine pair (same identity) or an impostor pair. Per group
(`east_southeast_asian`, `other`: a pair counts in a group when both faces are in it) and over
`all` pairs, the strict threshold is the distance below which at most `--target-fmr` (1e-4) of
the impostor pairs fall, or the lowest impostor distance when the group has fewer than
1 / target impostor pairs (then the rate cannot be observed; the file says so). The threshold
used (`strict`) is the lowest of them, since the group of a citizen is not known at run time.
The genuine accept rate at each threshold is measured and written beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from ekyc.face import thresholds as th
from ekyc.face.matcher import FaceImageError, Matcher, default_matcher

GROUPS = ("east_southeast_asian", "other")


def default_faces_dir() -> Path:
    root = os.environ.get("EKYC_TEST_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[3] / "shared" / "data"
    return base / "faces-dev"


def encode_manifest(folder: Path, matcher: Matcher, log=None) -> tuple[list[dict], np.ndarray,
                                                                       list[str]]:
    """(rows with a face, their vectors, files without a face) of `folder/manifest.json`."""
    rows = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    kept, vectors, missing = [], [], []
    for i, row in enumerate(rows):
        try:
            enc = matcher.encode((folder / row["file"]).read_bytes())
        except (OSError, FaceImageError):
            enc = None
        if enc is None:
            missing.append(row["file"])
        else:
            kept.append(row)
            vectors.append(enc.vector)
        if log and (i + 1) % 100 == 0:
            log(f"encoded {i + 1}/{len(rows)}")
    return kept, np.array(vectors), missing


def pair_distances(rows: list[dict], vectors: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Genuine and impostor distances per group and over all pairs."""
    diff = vectors[:, None, :] - vectors[None, :, :]
    dist = np.sqrt((diff * diff).sum(-1))
    iu = np.triu_indices(len(rows), k=1)
    ident = np.array([r["identity"] for r in rows])
    group = np.array([r["group"] for r in rows])
    same = (ident[:, None] == ident[None, :])[iu]
    values = dist[iu]
    out = {"all": {"genuine": values[same], "impostor": values[~same]}}
    for g in GROUPS:
        both = ((group[:, None] == g) & (group[None, :] == g))[iu]
        out[g] = {"genuine": values[same & both], "impostor": values[~same & both]}
    return out


def calibrate(folder: Path, matcher: Matcher | None = None, target_fmr: float = 1e-4,
              log=None) -> dict:
    """The thresholds document (see the module docstring)."""
    matcher = matcher or default_matcher()
    rows, vectors, missing = encode_manifest(folder, matcher, log)
    pairs = pair_distances(rows, vectors)
    groups: dict[str, dict] = {}
    for name, d in pairs.items():
        threshold, method, allowed = th.strict_threshold(d["impostor"], target_fmr)
        entry = {"images": int(sum(1 for r in rows if name == "all" or r["group"] == name)),
                 "identities": len({r["identity"] for r in rows
                                    if name == "all" or r["group"] == name}),
                 "genuine_pairs": int(d["genuine"].size),
                 "impostor_pairs": int(d["impostor"].size),
                 "method": method, "false_matches_allowed": allowed,
                 "lowest_impostor_distance": (round(float(d["impostor"].min()), 4)
                                              if d["impostor"].size else None),
                 "genuine_distance_median": (round(float(np.median(d["genuine"])), 4)
                                             if d["genuine"].size else None)}
        if method == "lowest_impostor":
            entry["note"] = (f"fewer than {round(1 / target_fmr)} impostor pairs: a false "
                             f"match rate of {target_fmr:g} cannot be observed; the strict "
                             "threshold is the lowest impostor distance seen")
        if threshold is not None:
            entry["strict"] = _floor4(threshold)
            entry["at_own_strict"] = th.rates(d["genuine"], d["impostor"], entry["strict"])
        groups[name] = entry
    strict = min(g["strict"] for g in groups.values() if "strict" in g)
    for name, entry in groups.items():
        entry["at_used_strict"] = th.rates(pairs[name]["genuine"], pairs[name]["impostor"],
                                           strict)
    manifest = (folder / "manifest.json").read_bytes()
    return {
        "model": {"name": matcher.model.name, "version": matcher.model.version},
        "dlib_version": getattr(matcher, "dlib_version", None),
        "provisional": True,
        "target_fmr": target_fmr,
        "strict": strict,
        "accept_rule": "distance < strict",
        "strict_is": "the lowest per-group strict threshold (a citizen's group is not known "
                     "at run time)",
        "data": {"folder": folder.name, "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
                 "images_encoded": len(rows), "images_without_face": missing},
        "groups": groups,
    }


def _floor4(x: float) -> float:
    """Round down to 4 decimals (never accept more than calibrated)."""
    return float(np.floor(x * 10_000) / 10_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ekyc.face.calibrate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default=None,
                        help="face set with manifest.json (default $EKYC_TEST_DATA/faces-dev)")
    parser.add_argument("--out", default=str(th.DEFAULT_PATH),
                        help="where to write the thresholds (default: the matcher's file)")
    parser.add_argument("--target-fmr", type=float, default=1e-4)
    parser.add_argument("--json", action="store_true", help="print the document")
    args = parser.parse_args(argv)
    folder = Path(args.dir) if args.dir else default_faces_dir()
    if not (folder / "manifest.json").is_file():
        print(f"calibrate: no manifest.json in {folder}", file=sys.stderr)
        return 2
    doc = calibrate(folder, target_fmr=args.target_fmr,
                    log=lambda msg: print(msg, file=sys.stderr))
    text = json.dumps(doc, indent=1) + "\n"
    if args.out != "-":
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json or args.out == "-":
        print(text, end="")
    for name, g in doc["groups"].items():
        used = g["at_used_strict"]
        print(f"{name}: {g['genuine_pairs']} genuine / {g['impostor_pairs']} impostor pairs, "
              f"own strict {g.get('strict')} ({g['method']}); at {doc['strict']}: genuine "
              f"accept {used.get('genuine_accept_rate')}, false matches "
              f"{used.get('impostor_accepted')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
