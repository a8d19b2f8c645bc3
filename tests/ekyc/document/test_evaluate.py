"""`ekyc evaluate-documents`: the report a maintainer reads to know the reader's accuracy."""

from __future__ import annotations

import argparse
import json

import pytest

from ekyc.document import ocr, synth
from ekyc.document.evaluate import cli_evaluate_documents, summarize

pytestmark = pytest.mark.skipif(ocr.tesseract_version() == "unavailable",
                                reason="Tesseract is not installed")


@pytest.fixture(scope="module")
def card_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cards")
    synth.generate_set(folder, n=5, forgeries=3, seed=3, variations=["none", "rotation", "jpeg"],
                       gate_cases=1)
    return folder


def _run(folder, capsys) -> tuple[int, dict]:
    status = cli_evaluate_documents(argparse.Namespace(dir=str(folder), json=True, limit=None))
    return status, json.loads(capsys.readouterr().out)


def test_report_counts_reads_catches_and_cpu(card_set, capsys):
    status, report = _run(card_set, capsys)
    assert status == 0
    manifest = json.loads((card_set / "manifest.json").read_text(encoding="utf-8"))
    rows = manifest["cards"]
    assert report["cards"] == len(rows) == 6
    genuine = [r for r in rows if r["genuine"] and r["purpose"] == "reading"]
    assert report["genuine"]["cards"] == len(genuine) == 2
    assert report["genuine"]["exact_id_rate"] == 1.0  # clean photos: both numbers read
    forged = [r for r in rows if not r["genuine"] and not r["needs_stage"]]
    assert report["forgeries"]["cards"] == len(forged) == 3
    assert report["forgeries"]["caught_rate"] == 1.0
    assert set(report["forgeries"]["by_type"]) == {r["forgery"] for r in forged}
    assert report["quality_gate_cases"] == {**report["quality_gate_cases"], "cards": 1,
                                            "refused_rate": 1.0}
    cpu = report["cpu_seconds"]
    assert 0 < cpu["median"] <= cpu["p90"]
    assert report["reference_date"] == manifest["reference_date"]
    assert set(report["by_variation"]) == {"none", "rotation", "jpeg"}


def test_deferred_forgeries_are_reported_apart_from_the_document_rate():
    rows = [
        {"variation": "none", "genuine": True, "forgery": None, "national_id": "001199000001"},
        {"variation": "none", "genuine": False, "forgery": "swapped_portrait",
         "national_id": "001199000002", "needs_stage": "face", "expected_codes": []},
        {"variation": "blur", "genuine": False, "forgery": "qr_mrz_number",
         "national_id": "001199000003", "expected_codes": ["qr_mrz_id_mismatch"]},
    ]
    outcomes = [
        {"cpu": 0.4, "codes": [], "worst": None, "national_id": "001199000001", "gate": False},
        {"cpu": 0.5, "codes": [], "worst": None, "national_id": "001199000002", "gate": False},
        {"cpu": 0.6, "codes": ["qr_missing"], "worst": "warn", "national_id": "001199000003",
         "gate": False},
    ]
    report = summarize(rows, outcomes)
    assert report["forgeries"] == {"cards": 1, "caught_rate": 0.0, "by_type": {
        "qr_mrz_number": {"cards": 1, "caught_rate": 0.0, "expected_code_rate": 0.0}}}
    assert report["deferred"]["swapped_portrait"]["stage"] == "face"
    assert report["deferred"]["swapped_portrait"]["flagged_by_document_stage"] == 0
    assert report["genuine"]["exact_id_rate"] == 1.0
    assert report["failures"] == [{"front": None, "variation": "blur",
                                   "forgery": "qr_mrz_number", "codes": ["qr_missing"]}]


def test_a_refused_capture_is_not_an_exact_read():
    rows = [{"variation": "glare", "genuine": True, "forgery": None, "front": "a.jpg",
             "national_id": "001199000001"}]
    outcomes = [{"cpu": 0.4, "codes": ["quality_glare"], "worst": "review",
                 "national_id": "001199000001", "gate": True}]
    genuine = summarize(rows, outcomes)["genuine"]
    assert genuine["exact_id_rate"] == 0.0 and genuine["exact_id_rate_ungated"] == 1.0
    assert genuine["gate_refused_rate"] == 1.0


def test_missing_manifest_is_a_usage_error(tmp_path, capsys):
    status = cli_evaluate_documents(argparse.Namespace(dir=str(tmp_path), json=True, limit=None))
    assert status == 2
    assert "manifest.json" in capsys.readouterr().err
