"""Measure the liveness check on generated bursts and the passive cues on labelled attacks.

    uv run python -m ekyc.liveness.evaluate --json [--n 60] [--seed 1] [--data DIR]
        [--swap-same-group]

Prints JSON: `sequences` (genuine bursts from faces-dev photos: share passing, in review,
failing; per attack kind: share rejected (fail), in review, passing), `passive` (attack
scores, APCER and BPCER at the review threshold on `presentation_attacks/` and on generated
screen-recapture and print simulations), `cpu_ms` (liveness verify per burst: the shared
detection excluded, the embeddings it asks for included, see `check.same_face_sample`).
Needs the shared test data (`EKYC_TEST_DATA`, default ../shared/data).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from ekyc.liveness import synth
from ekyc.liveness.check import PASSIVE_REVIEW, verify

# Labels of presentation_attacks/ (MANIFEST-curated.txt): bona fide = live.
PA_LABELS = {"silentface_live_T1.jpg": "live", "silentface_print_F1.jpg": "print",
             "silentface_screen_F2.jpg": "screen", "doubango_genuine.jpg": "live",
             "doubango_spoof.jpg": "spoof", "doubango_deepfake.jpg": "deepfake",
             "doubango_disguise.jpg": "disguise"}


def data_dir(arg: str | None = None) -> Path:
    root = Path(__file__).resolve().parents[2]
    return Path(arg or os.environ.get("EKYC_TEST_DATA") or root.parent / "shared" / "data")


def simulate_screen(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    """The face shown on a screen and photographed: RGB sub-pixel stripes, a slight rotation
    and a non-integer downscale (moire), brighter and bluer, a reflection blob."""
    h, w = rgb.shape[:2]
    up = cv2.resize(rgb, (w * 3, h * 3), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    stripes = np.zeros_like(up)
    for c in range(3):
        stripes[:, c::3, c] = 1.0
    up = up * (0.45 + 0.55 * stripes) * 1.5
    mat = cv2.getRotationMatrix2D((w * 1.5, h * 1.5), rng.uniform(-6, 6), 1.0)
    up = cv2.warpAffine(up, mat, (w * 3, h * 3), borderMode=cv2.BORDER_REFLECT)
    f = rng.uniform(2.3, 2.8)
    out = cv2.resize(up, (round(w * 3 / f), round(h * 3 / f)), interpolation=cv2.INTER_LINEAR)
    out[..., 2] *= 1.08
    if rng.random() < 0.5:
        gy, gx = rng.uniform(0.2, 0.8) * out.shape[0], rng.uniform(0.2, 0.8) * out.shape[1]
        yy, xx = np.mgrid[0:out.shape[0], 0:out.shape[1]]
        out += 160 * np.exp(-((yy - gy) ** 2 + (xx - gx) ** 2) / (2 * (out.shape[0] / 10) ** 2))[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def simulate_print(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    """The face printed and photographed: halftone dots, less contrast, washed-out colour."""
    h, w = rgb.shape[:2]
    up = cv2.resize(rgb, (w * 2, h * 2), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    yy, xx = np.mgrid[0:h * 2, 0:w * 2]
    period = rng.uniform(3.0, 4.5)
    dots = 0.5 + 0.5 * np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
    grey = up.mean(axis=2, keepdims=True)
    up = grey + (up - grey) * rng.uniform(0.45, 0.7)
    up = (up * 0.75 + 40) * (0.85 + 0.15 * dots[..., None])
    out = cv2.resize(up, (round(w * 1.3), round(h * 1.3)), interpolation=cv2.INTER_AREA)
    return np.clip(cv2.GaussianBlur(out, (3, 3), 0.8), 0, 255).astype(np.uint8)


def _rates(scores: list[tuple[float, bool]], threshold: float) -> dict:
    attacks = [s for s, is_attack in scores if is_attack]
    bona = [s for s, is_attack in scores if not is_attack]
    return {"threshold": threshold, "attacks": len(attacks), "bona_fide": len(bona),
            "apcer": round(sum(s < threshold for s in attacks) / len(attacks), 3)
            if attacks else None,
            "bpcer": round(sum(s >= threshold for s in bona) / len(bona), 3) if bona else None}


def passive_figures(folder: Path, rows: list[dict], n: int, seed: int) -> dict:
    from ekyc.face.frames import analyse
    from ekyc.liveness.passive import score

    out: dict = {"presentation_attacks": {"images": {}}}
    scored = []
    pa = folder / "presentation_attacks"
    for name, label in sorted(PA_LABELS.items()):
        if not (pa / name).is_file():
            continue
        face = analyse((pa / name).read_bytes())
        if face is None:
            out["presentation_attacks"]["images"][name] = {"label": label, "face": False}
            continue
        s = score(face).attack_score
        out["presentation_attacks"]["images"][name] = {"label": label, "attack_score": s}
        scored.append((s, label != "live"))
    out["presentation_attacks"].update(_rates(scored, PASSIVE_REVIEW))
    rng = random.Random(seed)
    gen = {"screen": [], "print": [], "genuine": []}
    for row in rng.sample(rows, min(n, len(rows))):
        head = cv2.imread(str(folder / "faces-dev" / row["file"]))
        if head is None:
            continue
        rgb = cv2.resize(head[..., ::-1], (480, 480), interpolation=cv2.INTER_CUBIC)
        for kind, img in (("genuine", rgb), ("screen", simulate_screen(rgb, rng)),
                          ("print", simulate_print(rgb, rng))):
            face = analyse(img)
            if face is not None:
                gen[kind].append(score(face).attack_score)
    out["generated"] = {}
    for kind in ("screen", "print"):
        out["generated"][kind] = _rates([(s, True) for s in gen[kind]] +
                                        [(s, False) for s in gen["genuine"]], PASSIVE_REVIEW)
    return out


def sequence_figures(folder: Path, rows: list[dict], n: int, seed: int,
                     swap_same_group: bool = False) -> dict:
    from ekyc.face.frames import analyse_burst
    from ekyc.face.matcher import default_matcher

    matcher = default_matcher()
    rng = random.Random(seed)
    counts: dict[str, Counter] = {k: Counter() for k in ("genuine", *synth.ATTACKS)}
    reasons: dict[str, Counter] = {k: Counter() for k in counts}
    cpu: list[float] = []
    people = rng.sample(rows, min(n * 2, len(rows)))
    used = 0
    for k, row in enumerate(people):
        if used >= n:
            break
        try:
            head = synth.Head((folder / "faces-dev" / row["file"]).read_bytes())
        except ValueError:
            continue
        used += 1
        actions = rng.sample(synth.ACTIONS, rng.choice([2, 3]))
        for kind in list(counts):
            if kind == "genuine":
                frames, stamps = synth.genuine(head, actions, seed=seed * 1000 + k)
            else:
                other = None
                if kind == "face_swap":
                    pick = rng.choice([r for r in rows if r["identity"] != row["identity"]
                                       and (not swap_same_group
                                            or r.get("group") == row.get("group"))])
                    other = (folder / "faces-dev" / pick["file"]).read_bytes()
                try:
                    frames, stamps = synth.attack(kind, head, actions, seed=seed * 1000 + k,
                                                  other=other)
                except ValueError:
                    continue
            burst = analyse_burst(frames, matcher)
            t0 = time.process_time()
            result = verify(burst, actions, timestamps_ms=stamps, matcher=matcher)
            cpu.append(time.process_time() - t0)
            counts[kind][result.outcome] += 1
            reasons[kind][result.reason_code or "none"] += 1
    out = {}
    for kind, c in counts.items():
        total = sum(c.values())
        out[kind] = {"n": total, **{o: c[o] for o in ("pass", "review", "fail")},
                     "reasons": dict(reasons[kind])}
        if total:
            out[kind]["pass_rate" if kind == "genuine" else "rejected_rate"] = round(
                c["pass"] / total if kind == "genuine" else c["fail"] / total, 3)
    out["cpu_ms_verify_median"] = round(float(np.median(cpu)) * 1000, 1) if cpu else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--n", type=int, default=60, help="identities for generated bursts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", help="shared test data folder (default EKYC_TEST_DATA)")
    parser.add_argument("--swap-same-group", action="store_true",
                        help="the face_swap attacker is of the citizen's own demographic group "
                             "(harder: dlib tells such faces apart less well)")
    args = parser.parse_args(argv)
    folder = data_dir(args.data)
    manifest = folder / "faces-dev" / "manifest.json"
    if not manifest.is_file():
        print(f"faces-dev not found under {folder} (set EKYC_TEST_DATA)", file=sys.stderr)
        return 2
    rows = json.loads(manifest.read_text(encoding="utf-8"))
    report = {"sequences": sequence_figures(folder, rows, args.n, args.seed,
                                            args.swap_same_group),
              "passive": passive_figures(folder, rows, args.n, args.seed)}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        g = report["sequences"]["genuine"]
        print(f"genuine pass rate {g.get('pass_rate')} over {g['n']} bursts")
        for kind in synth.ATTACKS:
            print(f"{kind}: rejected {report['sequences'][kind].get('rejected_rate')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
