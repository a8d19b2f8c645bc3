"""`ekyc evaluate-documents`: the report a maintainer reads to know the reader's accuracy."""

from __future__ import annotations

import argparse
import json

import pytest

from ekyc.document import ocr, synth
from ekyc.document.evaluate import cli_evaluate_documents, summarize
from register.seed import faces_dir

pytestmark = pytest.mark.skipif(ocr.tesseract_version() == "unavailable",
                                reason="Tesseract is not installed")


@pytest.fixture(scope="module")
def card_set(tmp_path_factory):
    """9 cards, 7 forged (one of each type, a swapped portrait included), one gate case."""
    folder = tmp_path_factory.mktemp("cards")
    synth.generate_set(folder, n=9, forgeries=7, seed=3, variations=["none", "rotation", "jpeg"],
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
    assert report["cards"] == len(rows) == 10
    genuine = [r for r in rows if r["genuine"] and r["purpose"] == "reading"]
    assert report["genuine"]["cards"] == len(genuine) == 2
    assert report["genuine"]["exact_id_rate"] == 1.0  # clean photos: both numbers read
    forged = [r for r in rows if not r["genuine"] and not r["needs_stage"]]
    # Without the faces data there is no register portrait: the swapped portrait is deferred to
    # the face stage and reported apart.
    checkable = set(synth.FORGERIES) - (set() if faces_dir() else {"swapped_portrait"})
    assert report["forgeries"]["cards"] == len(forged) == len(checkable)
    assert report["forgeries"]["caught_rate"] == 1.0
    assert set(report["forgeries"]["by_type"]) == checkable
    if faces_dir() is not None:  # with the faces data every card has a register portrait
        assert report["deferred"] == {}  # swapped portraits count in the headline rate
        swap = report["forgeries"]["swapped_portrait"]
        assert swap["all"]["cards"] == swap["all"]["checked"] == 1
        assert swap["all"]["portrait_finding_rate"] == 1.0
        assert swap["east_southeast_asian -> east_southeast_asian"]["caught_rate"] == 1.0
        portrait = report["genuine"]["portrait_check"]
        assert portrait["all"]["cards"] == portrait["all"]["checked"] == 2
        assert 0 <= portrait["all"]["sent_to_review"] <= 2
        assert portrait["threshold"] and 0.2 < portrait["threshold"][0] < 0.6
        assert report["genuine"]["review_rate"] >= report["genuine"]["review_rate_without_portrait"]
    assert report["quality_gate_cases"] == {**report["quality_gate_cases"], "cards": 1,
                                            "refused_rate": 1.0}
    cpu = report["cpu_seconds"]
    assert 0 < cpu["median"] <= cpu["p90"]
    assert report["reference_date"] == manifest["reference_date"]
    assert set(report["by_variation"]) == {"none", "rotation", "jpeg"}


def test_deferred_forgeries_are_reported_apart_from_the_document_rate():
    """A swapped portrait with no register portrait to compare (a set made without the faces
    data) is left to the face stage."""
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
        "qr_mrz_number": {"cards": 1, "caught_rate": 0.0, "expected_code_rate": 0.0}},
        "swapped_portrait": {}}
    assert report["deferred"]["swapped_portrait"]["stage"] == "face"
    assert report["deferred"]["swapped_portrait"]["flagged_by_document_stage"] == 0
    assert report["genuine"]["exact_id_rate"] == 1.0
    assert report["failures"] == [{"front": None, "variation": "blur",
                                   "forgery": "qr_mrz_number", "codes": ["qr_missing"]}]


def _portrait(outcome, distance, threshold=0.41):
    return {"checked": True, "outcome": outcome, "distance": distance, "threshold": threshold}


def test_swapped_portraits_count_and_genuine_portrait_reviews_are_reported():
    mismatch = ["portrait_register_mismatch"]
    rows = [
        {"variation": "none", "genuine": True, "forgery": None, "national_id": "001199000001",
         "citizen_group": "other"},
        {"variation": "none", "genuine": True, "forgery": None, "national_id": "001199000002",
         "citizen_group": "east_southeast_asian"},
        {"variation": "none", "genuine": False, "forgery": "swapped_portrait",
         "national_id": "001199000003", "citizen_group": "east_southeast_asian",
         "swap_group": "east_southeast_asian", "expected_codes": mismatch},
        {"variation": "jpeg", "genuine": False, "forgery": "swapped_portrait", "front": "d.jpg",
         "national_id": "001199000004", "citizen_group": "other", "swap_group": "other",
         "expected_codes": mismatch},
    ]
    outcomes = [
        {"cpu": 0.5, "codes": [], "worst": None, "national_id": "001199000001", "gate": False,
         "flagged_without_portrait": False, "portrait": _portrait("match", 0.3)},
        {"cpu": 0.5, "codes": mismatch, "worst": "review", "national_id": "001199000002",
         "gate": False, "flagged_without_portrait": False,
         "portrait": _portrait("mismatch", 0.45)},
        {"cpu": 0.5, "codes": mismatch, "worst": "review", "national_id": "001199000003",
         "gate": False, "flagged_without_portrait": False,
         "portrait": _portrait("mismatch", 0.7)},
        {"cpu": 0.5, "codes": [], "worst": None, "national_id": "001199000004", "gate": False,
         "flagged_without_portrait": False, "portrait": _portrait("match", 0.4)},
    ]
    report = summarize(rows, outcomes)
    forgeries = report["forgeries"]
    assert (forgeries["cards"], forgeries["caught_rate"]) == (2, 0.5)
    assert forgeries["by_type"]["swapped_portrait"] == {"cards": 2, "caught_rate": 0.5,
                                                        "expected_code_rate": 0.5}
    hard = forgeries["swapped_portrait"]["east_southeast_asian -> east_southeast_asian"]
    assert hard["caught_rate"] == 1.0 and hard["distance"]["min"] == 0.7
    assert forgeries["swapped_portrait"]["other -> other"]["caught_rate"] == 0.0
    assert report["failures"] == [{"front": "d.jpg", "variation": "jpeg",
                                   "forgery": "swapped_portrait", "codes": [],
                                   "portrait": _portrait("match", 0.4)}]
    genuine = report["genuine"]
    assert (genuine["review_rate"], genuine["review_rate_without_portrait"]) == (0.5, 0.0)
    portrait = genuine["portrait_check"]
    assert portrait["threshold"] == [0.41]
    assert portrait["all"] == {"cards": 2, "checked": 2, "sent_to_review": 1,
                               "sent_to_review_rate": 0.5, "only_reason": 1, "no_face": 0,
                               "distance": {"median": 0.3, "p90": 0.45, "min": 0.3,
                                            "max": 0.45}}
    assert portrait["east_southeast_asian"]["sent_to_review"] == 1
    assert portrait["other"]["sent_to_review"] == 0


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
