"""Three outcomes at calibrated thresholds: what a caller notices is where a distance falls
(accept below strict, reject at or above loose, review between) and that the rules that pick
the thresholds keep their promised error rates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekyc.face import ModelInfo, Thresholds, ThresholdsError, default_matcher, load_thresholds
from ekyc.face import thresholds as th
from ekyc.face.calibrate import choose, folds_of, group_strict, normal_tail

MODEL = ModelInfo("m", "1")


def test_three_outcomes():
    limits = Thresholds(MODEL, strict=0.4, loose=0.6, target_fmr=1e-4)
    assert [limits.outcome(d) for d in (0.0, 0.3999, 0.4, 0.5, 0.5999, 0.6, 1.3)] == [
        "accept", "accept", "review", "review", "review", "reject", "reject"]
    with pytest.raises(ValueError):
        limits.outcome(float("nan"))
    with pytest.raises(ThresholdsError):
        Thresholds(MODEL, strict=0.5, loose=0.4, target_fmr=1e-4)
    two = Thresholds(MODEL, strict=0.4, target_fmr=1e-4)  # an old two-outcome file
    assert two.loose == 0.4 and two.outcome(0.45) == "reject"


def test_loose_rejects_at_most_the_allowed_share_of_genuine_pairs():
    genuine = np.linspace(0.2, 0.7, 1000)
    loose, allowed = th.loose_threshold(genuine, 0.01)
    assert allowed == 10
    assert (genuine >= loose).sum() <= 10 and (genuine >= loose - 0.001).sum() > 10
    ties = np.array([0.5] * 50 + [0.3] * 50)
    loose, _ = th.loose_threshold(ties, 0.01)
    assert (ties >= loose).sum() == 0  # ties stay below, never rejected
    assert th.loose_threshold(np.array([]), 0.01) == (None, 0)


def test_a_small_group_gets_the_lower_of_its_lowest_impostor_and_the_normal_tail():
    rng = np.random.default_rng(1)
    impostor = rng.normal(0.7, 0.08, 4000)  # < 10,000 pairs: 1e-4 not observable
    strict, method, allowed = group_strict(impostor, 1e-4)
    tail = normal_tail(impostor, 1e-4)
    assert allowed == 0 and strict <= min(impostor.min(), tail) + 1e-4
    assert method in ("normal_tail", "lowest_impostor")
    optimistic, method, _ = group_strict(impostor, 1e-4, "lowest_impostor")
    assert method == "lowest_impostor" and optimistic == pytest.approx(impostor.min(), abs=1e-4)
    assert optimistic >= strict
    many = rng.normal(0.7, 0.08, 200_000)  # observable: the empirical quantile
    strict, method, allowed = group_strict(many, 1e-4)
    assert method == "fmr_quantile" and allowed == 20
    assert (many < strict).sum() <= 20
    assert abs(normal_tail(many, 1e-4) - strict) < 0.01  # the fit agrees where it can be seen


def test_one_pair_of_thresholds_serves_every_group():
    rng = np.random.default_rng(2)
    pairs = {"all": {}, "a": {"genuine": rng.normal(0.35, 0.05, 500),
                              "impostor": rng.normal(0.6, 0.06, 20_000)},
             "b": {"genuine": rng.normal(0.4, 0.06, 500),
                   "impostor": rng.normal(0.75, 0.06, 20_000)}}
    pairs["all"] = {k: np.concatenate([pairs["a"][k], pairs["b"][k]]) for k in ("genuine",
                                                                                 "impostor")}
    strict, loose, entries = choose(pairs, 1e-4, 0.01)
    assert strict == min(e["strict"] for e in entries.values())
    assert loose == max(e["loose"] for e in entries.values())
    for d in pairs.values():
        rates = th.outcome_rates(d["genuine"], d["impostor"], strict, loose)
        assert rates["fmr_accept"] <= 1e-4 and rates["fnmr_reject"] <= 0.01


def test_folds_are_identity_disjoint_and_cover_every_group():
    rows = [{"identity": f"{g}{i}", "group": g} for g in "ab" for i in range(12) for _ in (0, 1)]
    fold = folds_of(rows, 5)
    by_identity: dict[str, set] = {}
    for row, f in zip(rows, fold, strict=True):
        by_identity.setdefault(row["identity"], set()).add(int(f))
    assert all(len(f) == 1 for f in by_identity.values())
    for g in "ab":
        assert {int(f) for r, f in zip(rows, fold, strict=True) if r["group"] == g} == set(
            range(5))


def test_stored_thresholds_have_three_outcomes_for_this_model(tmp_path):
    limits = load_thresholds(default_matcher().model)
    assert 0.2 < limits.strict < limits.loose < 0.9
    assert limits.outcome(limits.strict - 1e-6) == "accept"
    assert limits.outcome(limits.loose) == "reject"
    doc = json.loads(th.DEFAULT_PATH.read_text())
    for name in ("all", "east_southeast_asian", "other"):
        used = doc["groups"][name]["at_used"]
        assert used["fnmr_reject"] <= 0.01
        assert used["counts"]["impostor_accept"] <= max(
            1, doc["groups"][name]["impostor_pairs"] * doc["target_fmr"])
        assert doc["cross_validation"]["groups"][name]["genuine_pairs"] > 0
    broken = tmp_path / "t.json"
    broken.write_text("{}")
    with pytest.raises(ThresholdsError):
        load_thresholds(default_matcher().model, broken)


@given(st.floats(0, 2), st.floats(0, 1), st.lists(st.floats(0, 3), min_size=2, max_size=20))
def test_outcomes_never_go_back_as_the_distance_grows(strict, gap, distances):
    limits = Thresholds(MODEL, strict=strict, loose=strict + gap, target_fmr=1e-4)
    rank = {"accept": 0, "review": 1, "reject": 2}
    seen = [rank[limits.outcome(d)] for d in sorted(distances)]
    assert seen == sorted(seen)
