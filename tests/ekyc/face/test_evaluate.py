"""`ekyc evaluate-faces DIR --json --plot FILE` on any labelled folder: the three-outcome
figures per group (the two known groups, `all`, and any other group the manifest names) and a
DET curve PNG."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ekyc import cli
from ekyc.face.evaluate import det_points, pair_distances
from tests.ekyc.face.test_matcher import FACES, needs_faces

ROWS = [("Wang_Yi/1.jpg", "east_southeast_asian"), ("Wang_Yi/2.jpg", "east_southeast_asian"),
        ("Yao_Ming/1.jpg", "east_southeast_asian"), ("Yao_Ming/2.jpg", "east_southeast_asian"),
        ("Antonio_Palocci/1.jpg", "other"), ("Antonio_Palocci/2.jpg", "other"),
        ("Leslie_Caldwell/1.jpg", "other"), ("Ahmed_Chalabi/1.jpg", "south_asian"),
        ("Ahmed_Chalabi/2.jpg", "south_asian"), ("Colin_Montgomerie/4.jpg", "other")]


@needs_faces
def test_evaluate_faces_on_a_small_folder(tmp_path, capsys):
    rows = []
    for file, group in ROWS:
        (tmp_path / file).parent.mkdir(exist_ok=True)
        shutil.copyfile(FACES / file, tmp_path / file)
        rows.append({"file": file, "identity": file.split("/")[0], "group": group})
    (tmp_path / "manifest.json").write_text(json.dumps(rows))
    plot = tmp_path / "det.png"
    code = cli.main(["evaluate-faces", str(tmp_path), "--json", "--plot", str(plot), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["model"].startswith("dlib-resnet-v1/")
    assert report["images_without_face"] == ["Colin_Montgomerie/4.jpg"]
    assert report["same_data_as_calibration"] is False
    groups = report["groups"]
    assert set(groups) == {"all", "east_southeast_asian", "other", "south_asian"}
    asian = groups["east_southeast_asian"]
    assert (asian["genuine_pairs"], asian["impostor_pairs"]) == (2, 4)
    assert (groups["other"]["genuine_pairs"], groups["other"]["impostor_pairs"]) == (1, 2)
    assert (groups["south_asian"]["genuine_pairs"], groups["south_asian"]["impostor_pairs"]) \
        == (1, 0)
    assert groups["south_asian"]["fmr_accept"] is None  # no impostor pair: no rate
    total = 9 * 8 // 2
    assert groups["all"]["genuine_pairs"] + groups["all"]["impostor_pairs"] == total
    for g in groups.values():
        for key in ("fmr_accept", "impostor_review_rate", "fnmr_reject", "review_rate_genuine"):
            assert key in g
        if g["genuine_pairs"]:
            assert g["fnmr_reject"] + g["review_rate_genuine"] + g["genuine_accept_rate"] == \
                pytest.approx(1)
    with Image.open(plot) as img:
        assert img.format == "PNG" and img.size[0] > 400


def test_a_folder_without_manifest_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["evaluate-faces", str(tmp_path), "--json"]) == 2
    assert "manifest.json" in capsys.readouterr()[1]
    (tmp_path / "manifest.json").write_text('[{"file": "a.jpg"}]')
    assert cli.main(["evaluate-faces", str(tmp_path), "--json"]) == 2


def test_pairs_and_det_points():
    rows = [{"identity": i, "group": g} for i, g in (("a", "x"), ("a", "x"), ("b", "x"),
                                                     ("c", "other"))]
    vectors = np.array([[0.0, 0], [0.1, 0], [1.0, 0], [0.0, 2]])
    pairs = pair_distances(rows, vectors)
    assert pairs["all"]["genuine"].tolist() == pytest.approx([0.1])
    assert sorted(pairs["x"]["impostor"].tolist()) == pytest.approx([0.9, 1.0])
    assert pairs["other"]["impostor"].size == 0
    points = det_points(pairs["x"]["genuine"], pairs["x"]["impostor"])
    assert points[0] == (0.0, 1.0) and points[-1][1] == 0.0
    fmr = [p[0] for p in points]
    fnmr = [p[1] for p in points]
    assert fmr == sorted(fmr) and fnmr == sorted(fnmr, reverse=True)
