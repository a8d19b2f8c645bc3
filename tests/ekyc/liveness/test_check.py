"""The challenge logic of `ekyc.liveness.check` without images: events in order, timing."""

from types import SimpleNamespace

import pytest

from ekyc.liveness.check import events, match_actions, segments, verify


def test_events_collapse_runs_and_skip_missing_faces():
    labels = ["neutral", "turn_left", None, "turn_left", "neutral", "blink", "blink", "neutral"]
    assert events(labels) == ["turn_left", "blink"]


@pytest.mark.parametrize(("seen", "actions", "reason"), [
    (["turn_left", "blink"], ["turn_left", "blink"], None),
    (["blink", "turn_left", "blink"], ["turn_left", "blink"], None),       # a natural blink
    (["blink", "turn_left"], ["turn_left", "blink"], "liveness_order"),    # reordered
    (["turn_left", "look_up", "blink"], ["turn_left", "blink"], "liveness_order"),  # unasked
    (["turn_right"], ["turn_left", "blink"], "liveness_action_missing"),
    ([], ["look_up", "turn_right"], "liveness_action_missing"),
    (["look_up", "blink", "look_up", "turn_left"], ["look_up", "turn_left"], None),  # held
    (["look_up", "turn_left", "look_up"], ["look_up", "turn_left"], "liveness_order"),
])
def test_actions_must_come_in_the_challenge_order(seen, actions, reason):
    assert match_actions(seen, actions) == reason


def _burst(n):
    return SimpleNamespace(faces=[None] * n, encodings=[None] * n, errors=[None] * n)


@pytest.mark.parametrize("stamps", [[3, 2, 1], [1, 1, 2], [1, 2], [0, 5, 10],
                                    [0, 1000, 200_000]])
def test_bad_timing_fails_before_any_image_work(stamps):
    result = verify(_burst(3), ["blink", "turn_left"], timestamps_ms=stamps)
    assert (result.outcome, result.reason_code) == ("fail", "liveness_timing")


def test_no_faces_fails():
    result = verify(_burst(4), ["blink", "turn_left"], timestamps_ms=[0, 400, 800, 1200])
    assert (result.outcome, result.reason_code) == ("fail", "liveness_too_few_faces")


def test_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError):
        verify(_burst(3), ["smile"], timestamps_ms=[])


def test_capture_steps_are_split_at_the_pauses():
    # capture.js: 2 frames, pause, 4 blink frames 130 ms apart, pause, 4 frames 350 ms apart
    stamps = [1150, 1500, 2530, 2660, 2790, 2920, 4170, 4520, 4870, 5220]
    assert segments(stamps, 3) == [(0, 2), (2, 6), (6, 10)]
    assert segments(stamps, 4) is None            # not the challenge's structure
    assert segments(list(range(0, 4000, 400)), 3) is None


def test_synthetic_bursts_follow_capture_js():
    from ekyc.liveness.synth import step_counts, step_every

    assert step_counts(["turn_left", "blink"]) == [2, 4, 4]
    assert step_counts(["blink", "look_up", "turn_right"]) == [2, 4, 3, 3]
    assert step_every(["blink", "look_up"]) == [350, 130, 350]
