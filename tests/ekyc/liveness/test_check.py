"""The challenge logic of `ekyc.liveness.check` without images: events in order, timing."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from ekyc.liveness.check import (
    events,
    match_actions,
    same_face_sample,
    segments,
    step_labels,
    verify,
)


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


def test_faces_smaller_than_a_selfies_count_as_no_face():
    # e.g. the portrait of an ID card held up to the camera: too small to read a movement from
    from ekyc.liveness.check import MIN_FACE_PX

    burst = _burst(4)
    burst.faces = [SimpleNamespace(box=(100, 100, MIN_FACE_PX - 1, MIN_FACE_PX - 1))] * 4
    result = verify(burst, ["blink", "turn_left"], timestamps_ms=[0, 400, 800, 1200])
    assert (result.outcome, result.reason_code) == ("fail", "liveness_too_few_faces")
    assert result.detail["small_faces"] == 4


def test_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError):
        verify(_burst(3), ["smile"], timestamps_ms=[])


def test_capture_steps_are_split_at_the_pauses():
    # capture.js: 2 frames, pause, 4 blink frames 130 ms apart, pause, 4 frames 350 ms apart
    stamps = [1150, 1500, 2530, 2660, 2790, 2920, 4170, 4520, 4870, 5220]
    assert segments(stamps, 3) == [(0, 2), (2, 6), (6, 10)]
    assert segments(stamps, 4) is None            # not the challenge's structure
    assert segments(list(range(0, 4000, 400)), 3) is None


def test_same_face_check_samples_the_anchor_and_one_face_per_step():
    # steps (0, 2) (2, 6) (6, 10): the anchor, then the face nearest each step's middle
    assert same_face_sample(list(range(10)), [(0, 2), (2, 6), (6, 10)]) == [0, 1, 3, 7]
    # a step's middle frame without a face: its nearest face; a step with no face: nothing
    assert same_face_sample([0, 1, 2, 5, 6, 9], [(0, 2), (2, 6), (6, 9), (9, 10)]) == \
        [0, 1, 2, 6, 9]
    assert same_face_sample([0, 1, 2, 5], [(0, 2), (2, 4), (4, 5), (5, 6)]) == [0, 1, 2, 5]
    # no steps in the timestamps: every third face after the anchor
    assert same_face_sample([0, 1, 2, 3, 4, 6, 7, 8, 9, 10], None) == [0, 1, 2, 6, 9]


def test_synthetic_bursts_follow_capture_js():
    from ekyc.liveness.synth import step_counts, step_every

    assert step_counts(["turn_left", "blink"]) == [3, 4, 4]
    assert step_counts(["blink", "look_up", "turn_right"]) == [3, 4, 3, 3]
    assert step_counts(["turn_left", "look_up", "turn_right"]) == [3, 3, 3, 3]
    assert step_counts(["look_up", "turn_right"]) == [3, 4, 4]
    assert step_every(["blink", "look_up"]) == [350, 130, 350]


def _m(du=0.0, dv=0.0, ear=0.3):
    from ekyc.liveness.measures import FrameMeasures

    return FrameMeasures(u=du, v=dv, ear=ear, eye_scale=60.0, shape=None)


def test_a_diagonal_frame_in_a_turn_step_counts_as_the_turn():
    base = {"u": 0.0, "v": 0.0, "ear": 0.3}
    steps = [(0, 1), (1, 3), (3, 5)]
    ms = [_m(), _m(0.08, -0.2), _m(0.2, -0.05), _m(0.0, -0.2), _m(-0.01, -0.15)]
    labels = ["neutral", "look_up", "turn_left", "look_up", "look_up"]
    assert step_labels(labels, ms, base, ["turn_left", "look_up"], steps) == \
        ["neutral", "turn_left", "turn_left", "look_up", "look_up"]
    # no movement towards the asked turn (a look-up step put in its place): unchanged
    assert step_labels(labels, ms, base, ["turn_right", "look_up"], steps) == labels
    # a turned frame never becomes a look-up (in a look-up step that shows the look-up it is
    # a slipped frame: neutral)
    turned = ["neutral", "turn_left", "turn_left", "turn_left", "look_up"]
    ms[3] = _m(0.2, -0.08)
    assert step_labels(turned, ms, base, ["turn_left", "look_up"], steps) == \
        ["neutral", "turn_left", "turn_left", "neutral", "look_up"]


def test_a_blink_step_reads_the_open_eye_from_its_own_frames():
    base = {"u": 0.0, "v": 0.0, "ear": 0.20}
    steps = [(0, 1), (1, 5)]
    ms = [_m(ear=0.2), _m(ear=0.24), _m(ear=0.23), _m(ear=0.17), _m(ear=0.24)]
    labels = ["neutral"] * 5
    assert step_labels(labels, ms, base, ["blink"], steps)[3] == "blink"
    # the same frame outside a blink step stays as the burst's median reads it
    assert step_labels(labels, ms, base, ["turn_left"], steps) == labels


def test_a_nod_within_a_turn_step_that_shows_the_turn_is_part_of_it():
    base = {"u": 0.0, "v": 0.0, "ear": 0.3}
    steps = [(0, 1), (1, 4)]
    ms = [_m(), _m(0.2), _m(-0.02, -0.12), _m(0.22)]
    labels = ["neutral", "turn_left", "look_up", "turn_left"]
    assert step_labels(labels, ms, base, ["turn_left"], steps) == \
        ["neutral", "turn_left", "turn_left", "turn_left"]
    # without the asked turn in the step the look-up stays (and fails the challenge)
    assert step_labels(labels, ms, base, ["turn_right"], steps) == labels


def test_eyes_that_stop_looking_open_are_a_blink_even_when_the_landmarks_stay_open():
    from ekyc.liveness.check import _labels

    rng = np.random.default_rng(0)
    open_eyes = rng.normal(size=(2, 24, 48)).astype(np.float32)
    shut_eyes = rng.normal(size=(2, 24, 48)).astype(np.float32)
    base = {"u": 0.0, "v": 0.0, "ear": 0.3, "eyes": open_eyes}
    ms = [_m(), _m(), _m()]
    ms = [replace(ms[0], eyes=open_eyes), replace(ms[1], eyes=shut_eyes),
          replace(ms[2], eyes=0.9 * open_eyes + 0.1 * shut_eyes)]
    assert _labels(ms, base) == ["neutral", "blink", "neutral"]


def test_the_same_face_check_encodes_each_steps_least_turned_frame():
    steps = [(0, 2), (2, 6), (6, 10)]
    posed = {0: 0, 1: 0, 2: 0.8, 3: 1.9, 4: 2.2, 5: 1.5, 6: 1.0, 7: 0.1, 8: 1.1, 9: 0.2}
    assert same_face_sample(list(range(10)), steps, posed) == [0, 1, 2, 7]


def test_a_slipped_frame_of_another_movement_in_a_step_that_shows_its_action_is_ignored():
    base = {"u": 0.0, "v": 0.0, "ear": 0.3}
    steps = [(0, 1), (1, 4), (4, 7)]
    ms = [_m(), _m(-0.3), _m(-0.3), _m(-0.3), _m(0.47), _m(0.0, -0.2), _m(0.0, -0.2)]
    labels = ["neutral", "turn_right", "turn_right", "turn_right", "turn_left", "look_up",
              "look_up"]
    out = step_labels(labels, ms, base, ["turn_right", "look_up"], steps)
    assert out[4] == "neutral" and match_actions(events(out), ["turn_right", "look_up"]) is None
    # a step without its asked action keeps everything (and fails the challenge)
    assert step_labels(labels, ms, base, ["turn_right", "turn_right"], steps)[4:] == \
        ["turn_left", "look_up", "look_up"]


def test_small_eyes_blink_with_a_smaller_drop():
    from ekyc.liveness.check import _labels

    # an open EAR of 0.15 (narrow eyes): 0.116 is a blink although it is < 0.035 below
    base = {"u": 0.0, "v": 0.0, "ear": 0.15}
    ms = [_m(ear=0.15), _m(ear=0.15), _m(ear=0.116), _m(ear=0.14)]
    assert _labels(ms, base) == ["neutral", "neutral", "blink", "neutral"]


def test_a_pose_in_the_look_straight_is_an_unrequested_movement():
    # a flat picture's landmarks jump: the look straight is where that shows
    base = {"u": 0.0, "v": 0.0, "ear": 0.3}
    steps = [(0, 3), (3, 5)]
    ms = [_m(), _m(), _m(-0.32), _m(-0.2), _m(-0.25)]
    labels = ["neutral", "neutral", "turn_right", "turn_right", "turn_right"]
    out = step_labels(labels, ms, base, ["turn_right"], steps)
    assert out[2] == "turn_right"
    assert match_actions(events(["neutral", "turn_right", "neutral", "blink", "neutral",
                                 "turn_right"]), ["blink", "turn_right"]) == "liveness_order"


def test_a_blink_step_whose_eyes_never_look_open_is_not_a_blink():
    rng = np.random.default_rng(1)
    open_eyes = rng.normal(size=(2, 24, 48)).astype(np.float32)
    other = rng.normal(size=(2, 24, 48)).astype(np.float32)
    base = {"u": 0.0, "v": 0.0, "ear": 0.3, "eyes": open_eyes}
    steps = [(0, 1), (1, 5)]
    ms = [replace(_m(), eyes=open_eyes)] + [replace(_m(), eyes=other) for _ in range(4)]
    labels = ["neutral", "blink", "blink", "blink", "blink"]
    assert "blink" not in step_labels(labels, ms, base, ["blink"], steps)
    # closing and opening again is one
    ms[2] = replace(_m(), eyes=open_eyes)
    labels[2] = "neutral"
    assert "blink" in step_labels(labels, ms, base, ["blink"], steps)


def test_a_step_holding_another_steps_movement_is_not_rescued_by_one_noisy_frame():
    # reordered frames: the turn-left step holds the look-up step's frames, one of which reads
    # as a turn to the left by noise
    base = {"u": 0.0, "v": 0.0, "ear": 0.3}
    steps = [(0, 1), (1, 4), (4, 7)]
    ms = [_m(), _m(0.0, -0.2), _m(0.15, -0.05), _m(0.0, -0.2), _m(0.2), _m(0.25), _m(0.2)]
    labels = ["neutral", "look_up", "turn_left", "look_up", "turn_left", "turn_left", "turn_left"]
    out = step_labels(labels, ms, base, ["turn_left", "look_up"], steps)
    assert out[1:4] == ["look_up", "turn_left", "look_up"]
    assert match_actions(events(out), ["turn_left", "look_up"]) is not None


def test_a_head_movement_in_a_blink_step_is_never_excused():
    # another session's burst: its look-up step answers our blink step, with eyes that read
    # as shut when the head tilts back
    base = {"u": 0.0, "v": 0.0, "ear": 0.3}
    steps = [(0, 1), (1, 5)]
    ms = [_m(), _m(0.0, -0.2), _m(), _m(), _m(0.0, -0.2)]
    labels = ["neutral", "look_up", "blink", "blink", "look_up"]
    out = step_labels(labels, ms, base, ["blink"], steps)
    assert out[1] == out[4] == "look_up"
    assert match_actions(events(out), ["blink"]) == "liveness_order"


def test_small_eyes_that_shut_in_a_blink_step_are_read_against_the_steps_open_frames():
    # a small eye shut loses less of its patch than BLINK_EYES asks: against the step's own
    # most open frame it is still clearly a blink; the most open frame itself stays open
    rng = np.random.default_rng(2)
    open_eyes = rng.normal(size=(2, 24, 48)).astype(np.float32)
    lid = rng.normal(size=(2, 24, 48)).astype(np.float32)

    def eyes(share):  # patches whose likeness to the open eyes is about `share`
        mix = share * open_eyes + np.sqrt(1 - share ** 2) * lid
        return (mix - mix.mean()) / mix.std()

    base = {"u": 0.0, "v": 0.0, "ear": 0.14, "eyes": open_eyes}
    steps = [(0, 1), (1, 5)]
    ms = [replace(_m(ear=0.14), eyes=open_eyes)] + [
        replace(_m(ear=0.14), eyes=eyes(s)) for s in (0.99, 0.88, 0.87, 0.99)]
    labels = ["neutral"] * 5
    out = step_labels(labels, ms, base, ["blink"], steps)
    assert out == ["neutral", "neutral", "blink", "blink", "neutral"]
    assert match_actions(events(out), ["blink"]) is None
    # open eyes' frame-to-frame noise is no blink
    ms[2], ms[3] = replace(ms[2], eyes=eyes(0.97)), replace(ms[3], eyes=eyes(0.96))
    assert "blink" not in step_labels(labels, ms, base, ["blink"], steps)
    # nor are eyes that never look open in the step (another person's, shut throughout)
    ms[1:] = [replace(m, eyes=eyes(0.8)) for m in ms[1:]]
    ms[2] = replace(ms[2], eyes=eyes(0.7))
    assert "blink" not in step_labels(labels, ms, base, ["blink"], steps)
    # outside a blink step nothing changes
    assert step_labels(labels, ms, base, ["turn_left"], steps) == labels


def test_a_head_movement_after_the_face_came_back_in_a_blink_step_is_a_new_one():
    from ekyc.liveness.check import moved_again

    # the previous step's turn still held at the blink step's start: the same movement
    assert not moved_again(["turn_right", "neutral", "blink", "neutral"])
    assert not moved_again(["neutral", "blink", None, "blink"])
    # a held-up card's landmarks jumping in the asked direction after the blink: a new one,
    # which match_actions alone would take for the turn held since the previous step
    labels = ["blink", "neutral", "turn_right", "blink"]
    assert moved_again(labels)
    assert match_actions(events(["neutral", "turn_right", *labels]),
                         ["turn_right", "blink"]) is None
