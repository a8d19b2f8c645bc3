"""Generated bursts from real faces-dev photos (`EKYC_TEST_DATA`): genuine bursts pass, every
attack listed in the issue fails. What a citizen or an attacker would notice."""

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("EKYC_TEST_DATA")
            or Path(__file__).resolve().parents[3].parent / "shared" / "data") / "faces-dev"
pytestmark = pytest.mark.skipif(not (DATA / "manifest.json").is_file(),
                                reason="faces-dev test data not found (set EKYC_TEST_DATA)")

# (photo, challenge): both groups, 2 and 3 actions, every action.
CASES = [("Hideki_Matsui/1.jpg", ["turn_left", "blink", "look_up"]),
         ("Roman_Polanski/2.jpg", ["turn_right", "turn_left"]),
         ("Nan_Wang/1.jpg", ["look_up", "turn_right", "blink"])]
OTHER = "Justine_Henin/3.jpg"


@pytest.fixture(scope="module")
def run():
    from ekyc.face.frames import analyse_burst
    from ekyc.face.matcher import default_matcher
    from ekyc.liveness import synth, verify
    from ekyc.liveness.replay import static_sequence

    matcher = default_matcher()
    cache = {}

    def go(kind, photo, actions, seed=3):
        key = (kind, photo, tuple(actions), seed)
        if key not in cache:
            head = synth.Head((DATA / photo).read_bytes())
            if kind == "genuine":
                frames, stamps = synth.genuine(head, actions, seed=seed)
            else:
                frames, stamps = synth.attack(kind, head, actions, seed=seed,
                                              other=(DATA / OTHER).read_bytes())
            burst = analyse_burst(frames, matcher)
            cache[key] = (verify(burst, actions, timestamps_ms=stamps, matcher=matcher),
                          burst, frames, stamps, static_sequence(burst))
        return cache[key]
    return go


@pytest.mark.parametrize(("photo", "actions"), CASES)
def test_genuine_burst_passes(run, photo, actions):
    result, *_ = run("genuine", photo, actions)
    assert result.outcome == "pass", (result.reason_code, result.detail.get("events"))
    assert 0.5 <= result.score <= 1


@pytest.mark.parametrize(("photo", "actions"), CASES)
def test_genuine_burst_encodes_the_anchor_and_one_face_per_step(run, photo, actions):
    # encoding (~74 ms a face) is the stage's main cost: not every frame is encoded
    result, burst, *_ = run("genuine", photo, actions)
    assert burst.encodings.computed == 2 + len(actions) == len(result.detail["same_face_frames"])


@pytest.mark.parametrize(("photo", "actions"), CASES)
def test_genuine_burst_without_timing_goes_to_review(run, photo, actions):
    from ekyc.liveness import verify

    _, burst, *_ = run("genuine", photo, actions)
    result = verify(burst, actions, timestamps_ms=[])
    assert (result.outcome, result.reason_code) == ("review", "liveness_no_timing")


@pytest.mark.parametrize("kind", ["still", "card", "reordered", "other_session", "face_swap"])
@pytest.mark.parametrize(("photo", "actions"), CASES)
def test_every_attack_fails(run, kind, photo, actions):
    result, *_ = run(kind, photo, actions)
    assert result.outcome == "fail", (result.reason_code, result.detail.get("events"))


def test_still_photo_is_a_static_sequence(run):
    photo, actions = CASES[0]
    result, _, _, _, static = run("still", photo, actions)
    assert static and result.reason_code == "liveness_static"
    assert not run("genuine", photo, actions)[4]


def test_reordered_and_replayed_bursts_fail_on_order(run):
    photo, actions = CASES[0]
    assert run("reordered", photo, actions)[0].reason_code in ("liveness_order",
                                                               "liveness_action_missing")
    assert run("face_swap", photo, actions)[0].reason_code == "liveness_face_changed"


def test_frames_of_another_session_are_near_in_fingerprint(run):
    from ekyc.liveness.replay import fingerprint, near

    photo, actions = CASES[1]
    _, burst, *_ = run("genuine", photo, actions)
    other_session = run("genuine", photo, actions, seed=4)[1]
    stored = [fingerprint(f.rgb) for f in burst.faces if f is not None]
    # The server keeps fingerprints; re-sent frames of a session are found again.
    assert all(any(near(fingerprint(f.rgb), s) for s in stored) for f in burst.faces if f)
    assert other_session  # a new genuine session is a new burst (different seed)


def test_a_card_portrait_of_someone_else_fails(run):
    from ekyc.face.matcher import default_matcher
    from ekyc.liveness import verify

    photo, actions = CASES[1]
    _, burst, *_ = run("genuine", photo, actions)
    matcher = default_matcher()
    own = matcher.encode((DATA / photo).read_bytes())
    other = matcher.encode((DATA / OTHER).read_bytes())
    ts = run("genuine", photo, actions)[3]
    assert verify(burst, actions, timestamps_ms=ts, reference=own,
                  matcher=matcher).outcome == "pass"
    result = verify(burst, actions, timestamps_ms=ts, reference=other, matcher=matcher)
    assert (result.outcome, result.reason_code) == ("fail", "liveness_not_card_holder")


def test_a_face_far_from_the_camera_is_asked_to_come_closer(run):
    # the genuine burst seen from three times as far: too small to read the movements from
    import io

    from PIL import Image

    from ekyc.face.frames import analyse_burst
    from ekyc.face.matcher import default_matcher
    from ekyc.liveness import verify

    photo, actions = CASES[1]
    _, _, frames, stamps, _ = run("genuine", photo, actions)
    far = []
    for frame in frames:
        img = Image.open(io.BytesIO(frame)).convert("RGB")
        canvas = Image.new("RGB", img.size, (128, 128, 128))
        small = img.resize((img.width // 3, img.height // 3))
        canvas.paste(small, (img.width // 3, img.height // 3))
        buf = io.BytesIO()
        canvas.save(buf, "JPEG", quality=92)
        far.append(buf.getvalue())
    burst = analyse_burst(far, default_matcher())
    assert any(f is not None for f in burst.faces)  # dlib still finds the small face
    assert all(f is None or f.box[2] < 80 for f in burst.faces)
    result = verify(burst, actions, timestamps_ms=stamps)
    assert (result.outcome, result.reason_code) == ("fail", "liveness_too_few_faces")
