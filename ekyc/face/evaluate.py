"""`ekyc evaluate-faces DIR --json [--plot FILE]`: the face matcher's three-outcome figures on
a labelled face set, at the stored (calibrated) thresholds.

DIR holds `manifest.json`: rows `file`, `identity`, `group` (as in
`../shared/data/faces-dev`). Every image is encoded with the default matcher (images without a
detectable face are listed and left out), every pair of images is a genuine pair (same
identity) or an impostor pair. A pair counts in a group when both faces are in it; `all`
counts every pair. Per group:

- `fmr_accept`: impostor pairs auto-accepted (distance < strict), target <= 1e-4;
- `impostor_review_rate`: impostor pairs sent to review (strict <= distance < loose);
- `fnmr_reject`: genuine pairs rejected (distance >= loose), target <= 0.01;
- `review_rate_genuine`: genuine pairs sent to review, target <= 0.20;
- `genuine_accept_rate`, `counts`, `meets_target` (per target) and `min_observable_fmr`
  (1 / impostor pairs: a group with fewer than 10,000 impostor pairs cannot show 1e-4).

`--plot FILE` writes the DET curve (false non-match rate against false match rate, log axes,
one curve per group, the strict and loose operating points marked) as a PNG drawn with Pillow.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np

from ekyc.face import thresholds as th
from ekyc.face.matcher import FaceImageError, default_matcher

KNOWN_GROUPS = ("east_southeast_asian", "other")
TARGETS = {"fmr_accept": 1e-4, "review_rate_genuine": 0.20, "fnmr_reject": 0.01}


class ManifestError(ValueError):
    """The folder has no readable manifest of labelled faces."""


def read_manifest(folder: Path) -> list[dict]:
    try:
        rows = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read {folder / 'manifest.json'}: {exc}") from exc
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and {"file", "identity", "group"} <= r.keys() for r in rows):
        raise ManifestError("manifest.json must be a list of rows with file, identity, group")
    return rows


def _encode_file(path: str):
    """A worker's job: the default matcher's vector of one file (None: no face)."""
    try:
        found = default_matcher().encode(Path(path).read_bytes())
    except (OSError, FaceImageError):
        return None
    return None if found is None else found.vector


def encode_rows(folder: Path, rows: list[dict], matcher, log=None, jobs: int = 1):
    """(rows with a face, their vectors as an (n, d) array, files without a face). With
    `jobs` > 1 the default matcher encodes in that many worker processes (`matcher` must then
    be the default one)."""
    paths = [str(folder / row["file"]) for row in rows]
    if jobs > 1 and len(rows) > 20:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            found = []
            for i, vector in enumerate(pool.map(_encode_file, paths, chunksize=8)):
                found.append(vector)
                if log and (i + 1) % 100 == 0:
                    log(f"encoded {i + 1}/{len(rows)}")
    else:
        found = []
        for i, path in enumerate(paths):
            try:
                enc = matcher.encode(Path(path).read_bytes())
            except (OSError, FaceImageError):
                enc = None
            found.append(None if enc is None else enc.vector)
            if log and (i + 1) % 100 == 0:
                log(f"encoded {i + 1}/{len(rows)}")
    kept = [row for row, v in zip(rows, found, strict=True) if v is not None]
    missing = [row["file"] for row, v in zip(rows, found, strict=True) if v is None]
    vectors = [v for v in found if v is not None]
    return kept, np.array(vectors, dtype=np.float64).reshape(len(kept), -1), missing


def default_jobs() -> int:
    """Worker processes for encoding a folder: the CPUs this process may use, at most 8."""
    import os

    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:
        return max(1, min(8, os.cpu_count() or 1))


def group_names(rows: list[dict]) -> list[str]:
    """`all`, the two known groups, then any other group the manifest names."""
    extra = sorted({str(r["group"]) for r in rows} - set(KNOWN_GROUPS))
    return ["all", *KNOWN_GROUPS, *extra]


def pair_distances(rows: list[dict], vectors: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Genuine and impostor distances per group (both faces in it) and over all pairs."""
    n = len(rows)
    names = group_names(rows)
    if n < 2:
        empty = np.zeros(0)
        return {g: {"genuine": empty, "impostor": empty} for g in names}
    squared = (vectors * vectors).sum(1)
    dist = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * vectors @ vectors.T, 0))
    iu = np.triu_indices(n, k=1)
    ident = np.array([str(r["identity"]) for r in rows])
    group = np.array([str(r["group"]) for r in rows])
    same = (ident[:, None] == ident[None, :])[iu]
    values = dist[iu]
    out = {"all": {"genuine": values[same], "impostor": values[~same]}}
    for g in names[1:]:
        both = ((group[:, None] == g) & (group[None, :] == g))[iu]
        out[g] = {"genuine": values[same & both], "impostor": values[~same & both]}
    return out


def figures(pairs: dict, strict: float, loose: float) -> dict:
    groups = {}
    for name, d in pairs.items():
        entry = th.outcome_rates(d["genuine"], d["impostor"], strict, loose)
        entry["min_observable_fmr"] = (round(1 / d["impostor"].size, 8)
                                       if d["impostor"].size else None)
        entry["meets_target"] = {k: (entry[k] <= limit if entry[k] is not None else None)
                                 for k, limit in TARGETS.items()}
        groups[name] = entry
    return groups


def evaluate(folder: Path, *, matcher=None, thresholds=None, log=None,
             jobs: int = 1) -> tuple[dict, dict]:
    """(the report, the pair distances per group); `jobs` > 1 only with the default matcher."""
    if matcher is not None:
        jobs = 1
    matcher = matcher or default_matcher()
    limits = thresholds or th.load(matcher.model)
    rows = read_manifest(folder)
    kept, vectors, missing = encode_rows(folder, rows, matcher, log, jobs)
    pairs = pair_distances(kept, vectors)
    manifest_sha = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    calibrated_on = _calibration_data(limits)
    report = {
        "model": str(matcher.model),
        "model_name": matcher.model.name, "model_version": matcher.model.version,
        "thresholds": {"strict": limits.strict, "loose": limits.loose,
                       "target_fmr": limits.target_fmr, "provisional": limits.provisional},
        "targets": TARGETS,
        "images": len(rows), "images_encoded": len(kept), "images_without_face": missing,
        "same_data_as_calibration": bool(calibrated_on
                                         and calibrated_on.get("manifest_sha256") == manifest_sha),
        "groups": figures(pairs, limits.strict, limits.loose),
    }
    return report, pairs


def _calibration_data(limits) -> dict:
    if not limits.path:
        return {}
    try:
        return json.loads(Path(limits.path).read_text(encoding="utf-8")).get("data", {})
    except (OSError, ValueError):
        return {}


# --- the DET plot -----------------------------------------------------------------------------
COLOURS = [(200, 30, 30), (30, 90, 200), (20, 140, 60), (150, 60, 170), (200, 120, 0)]


def det_points(genuine: np.ndarray, impostor: np.ndarray) -> list[tuple[float, float]]:
    """(FMR, FNMR) when accepting `distance < t`, for t over every observed distance."""
    if not genuine.size or not impostor.size:
        return []
    g, i = np.sort(genuine), np.sort(impostor)
    ts = np.unique(np.concatenate([g, i, [g[-1] + 1e-9]]))
    fmr = np.searchsorted(i, ts, side="left") / i.size
    fnmr = 1 - np.searchsorted(g, ts, side="left") / g.size
    return list(zip(fmr.tolist(), fnmr.tolist(), strict=True))


def plot_det(pairs: dict, strict: float, loose: float, path: str | Path, title: str) -> None:
    """Write a DET curve PNG (log axes from 1e-5 and 1e-3 to 1)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height, left, top, right, bottom = 1000, 700, 90, 70, 330, 70
    x_lo, y_lo = -5.0, -3.0
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13) if hasattr(ImageFont, "load_default") else None
    pw, ph = width - left - right, height - top - bottom

    def xy(fmr: float, fnmr: float) -> tuple[float, float]:
        lx = min(0.0, max(x_lo, math.log10(fmr))) if fmr > 0 else x_lo
        ly = min(0.0, max(y_lo, math.log10(fnmr))) if fnmr > 0 else y_lo
        return left + (lx - x_lo) / -x_lo * pw, top + ph - (ly - y_lo) / -y_lo * ph

    for e in range(int(x_lo), 1):
        x, _ = xy(10.0 ** e, 1)
        draw.line([(x, top), (x, top + ph)], fill=(225, 225, 225))
        draw.text((x - 14, top + ph + 6), f"1e{e}", fill="black", font=font)
    for e in range(int(y_lo), 1):
        _, y = xy(1, 10.0 ** e)
        draw.line([(left, y), (left + pw, y)], fill=(225, 225, 225))
        draw.text((left - 40, y - 7), f"1e{e}", fill="black", font=font)
    draw.rectangle([left, top, left + pw, top + ph], outline="black")
    # the targets: FMR 1e-4 (vertical), FNMR 1e-2 (horizontal)
    tx, _ = xy(1e-4, 1)
    _, ty = xy(1, 1e-2)
    draw.line([(tx, top), (tx, top + ph)], fill=(160, 160, 160), width=2)
    draw.line([(left, ty), (left + pw, ty)], fill=(160, 160, 160), width=2)
    draw.text((left + pw / 2 - 120, top + ph + 30),
              "false match rate (impostor pairs accepted, log)", fill="black", font=font)
    draw.text((10, top - 22), "false non-match rate (genuine pairs refused, log)",
              fill="black", font=font)
    draw.text((left, 8), title, fill="black", font=font)
    legend_y = top
    for k, (name, d) in enumerate(pairs.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = [xy(f, n) for f, n in det_points(d["genuine"], d["impostor"])]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for t, shape in ((strict, "strict"), (loose, "loose")):
            g, i = d["genuine"], d["impostor"]
            if not g.size or not i.size:
                continue
            x, y = xy(float((i < t).mean()), float((g >= t).mean()))
            if shape == "strict":
                draw.ellipse([x - 6, y - 6, x + 6, y + 6], outline=colour, width=3)
            else:
                draw.rectangle([x - 6, y - 6, x + 6, y + 6], outline=colour, width=3)
        draw.line([(left + pw + 15, legend_y + 8), (left + pw + 40, legend_y + 8)],
                  fill=colour, width=3)
        draw.text((left + pw + 45, legend_y),
                  f"{name} ({d['genuine'].size} gen / {d['impostor'].size} imp)",
                  fill="black", font=font)
        legend_y += 22
    legend_y += 10
    draw.ellipse([left + pw + 22, legend_y + 2, left + pw + 34, legend_y + 14], outline="black",
                 width=2)
    draw.text((left + pw + 45, legend_y), f"strict {strict} (accept below)", fill="black",
              font=font)
    legend_y += 22
    draw.rectangle([left + pw + 22, legend_y + 2, left + pw + 34, legend_y + 14],
                   outline="black", width=2)
    draw.text((left + pw + 45, legend_y), f"loose {loose}: FNMR = rejected", fill="black",
              font=font)
    draw.text((left + pw + 10, legend_y + 30), "grey: targets FMR 1e-4,\nFNMR 1e-2\n"
              "zero rates drawn on\nthe axes", fill=(90, 90, 90), font=font)
    img.save(str(path), "PNG")


# --- the command -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="folder with manifest.json (file, identity, "
                                                   "group) and the images")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="FILE", default=None, help="write the DET curve PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--jobs", type=int, default=None,
                        help="encoding processes (default: the usable CPUs, at most 8)")


def cli_evaluate_faces(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    try:
        report, pairs = evaluate(folder, log=log, jobs=args.jobs or default_jobs())
    except (ManifestError, th.ThresholdsError) as exc:
        print(f"ekyc evaluate-faces: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        plot_det(pairs, report["thresholds"]["strict"], report["thresholds"]["loose"],
                 args.plot, f"DET, {folder.name}, {report['model']}")
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for name, g in report["groups"].items():
            print(f"{name}: {g['genuine_pairs']} genuine / {g['impostor_pairs']} impostor pairs;"
                  f" impostors accepted {g['fmr_accept']}, in review "
                  f"{g['impostor_review_rate']}; genuine rejected {g['fnmr_reject']}, "
                  f"in review {g['review_rate_genuine']}")
    return 0
