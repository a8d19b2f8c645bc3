"""A demo case for the operator console: one onboarding sent through the running IdP's public
onboarding API that the real pipeline sends to review (development only).

    uv run python -m ekyc.review.demo [--issuer http://127.0.0.1:8000] [--wait 180]

The citizen is a synthetic citizen of the register stub without an account. Their card is
rendered by `ekyc.document.synth` as it was issued two years before the card the register
holds: a citizen who photographed their previous card. The document reader reads it, the
register confirms every identity field but answers that a newer card exists, and the policy
sends the case to an officer (`register_card_superseded`), which is what the console's queue
then shows. The selfie frames are photos of the card holder's face when the shared test faces
are present, else crops of the card's portrait (the development face-check setting records the
biometric checks without stopping the case). `make run` runs this once the IdP answers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import sys
import time

import requests

API = "/api/onboarding/v1"
TIMEOUT = 30


def _citizen(index: int):
    """A living citizen with a valid card and no demo account, different from make demo-cards'."""
    from ekyc.demo_cards import demo_citizens

    people = demo_citizens(index + 1)
    return people[index]


def previous_card(citizen):
    """The same citizen as on the card issued two years before the register's current card."""
    issued = citizen.card_issue_date - dt.timedelta(days=730)
    floor = citizen.date_of_birth.replace(year=citizen.date_of_birth.year + 14)
    return dataclasses.replace(citizen, card_issue_date=max(issued, floor))


def selfie_frames(citizen, front: bytes, count: int = 5) -> list[bytes]:
    """Selfie frames: the holder's own photos from the shared faces when present, else slightly
    shifted crops of the card's portrait area."""
    from PIL import Image

    from register import seed

    identity = seed.portrait_identity(citizen)
    images = seed.identity_images(identity) if identity else []
    folder = seed.faces_dir()
    if folder and len(images) > 1:
        photo = Image.open(folder / images[-1]).convert("RGB")
    else:
        card = Image.open(io.BytesIO(front)).convert("RGB")
        w, h = card.size
        photo = card.crop((int(w * 0.03), int(h * 0.2), int(w * 0.35), int(h * 0.85)))
    out = []
    for i in range(count):
        w, h = photo.size
        dx = int(w * 0.01 * i)
        frame = photo.crop((dx, 0, w - int(w * 0.04) + dx, h)).resize((480, 600))
        buf = io.BytesIO()
        frame.save(buf, "JPEG", quality=88)
        out.append(buf.getvalue())
    return out


def send_onboarding(http: requests.Session, issuer: str, front: bytes, back: bytes,
                    frames: list[bytes]) -> tuple[str, str]:
    """One whole onboarding through `issuer`'s public API with the session `http` (consent,
    case, card front and back, liveness challenge, selfie frames, submit); returns (case id,
    case token). Raises `requests.HTTPError` on the first answer that is not a success."""
    base = issuer.rstrip("/") + API
    consent = http.get(base + "/consent", timeout=TIMEOUT)
    consent.raise_for_status()
    made = http.post(base + "/cases", timeout=TIMEOUT, json={
        "consent": True, "consent_version": consent.json()["consent_version"]})
    made.raise_for_status()
    case_id, token = made.json()["case_id"], made.json()["case_token"]
    auth = {"Authorization": f"Bearer {token}"}
    for side, data in (("front", front), ("back", back)):
        http.post(f"{base}/cases/{case_id}/documents/{side}", data=data, timeout=TIMEOUT,
                  headers={**auth, "Content-Type": "image/jpeg"}).raise_for_status()
    challenge = http.post(f"{base}/cases/{case_id}/challenge", timeout=TIMEOUT, headers=auth)
    challenge.raise_for_status()
    now = int(time.time() * 1000)
    files = [("frames", (f"frame{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
    http.post(f"{base}/cases/{case_id}/selfie", files=files, timeout=TIMEOUT, headers=auth,
              data={"nonce": challenge.json()["nonce"],
                    "timestamps_ms": [str(now + 400 * i) for i in range(len(frames))]},
              ).raise_for_status()
    http.post(f"{base}/cases/{case_id}/submit", timeout=TIMEOUT, headers=auth).raise_for_status()
    return case_id, token


def case_status(http: requests.Session, issuer: str, case_id: str, token: str) -> dict:
    """The case's status JSON as the citizen's app sees it."""
    response = http.get(f"{issuer.rstrip('/')}{API}/cases/{case_id}", timeout=TIMEOUT,
                        headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return response.json()


def submit_demo_case(issuer: str, *, citizen=None, index: int = 3, wait: float = 180.0) -> dict:
    """Send the demo onboarding of `citizen` (default: the `index`-th demo citizen) through
    `issuer`'s API; returns the final status JSON with the case id."""
    from ekyc.document.synth import make_card

    citizen = citizen or _citizen(index)
    front, back, _truth = make_card(previous_card(citizen), seed=index)
    http = requests.Session()
    case_id, token = send_onboarding(http, issuer, front, back, selfie_frames(citizen, front))
    deadline = time.monotonic() + wait
    status = {}
    while time.monotonic() < deadline:
        status = case_status(http, issuer, case_id, token)
        if status.get("state") in ("needs_review", "approved", "rejected"):
            break
        time.sleep(1.0)
    return {"case_id": case_id, **status}


def _healthy(issuer: str) -> bool:
    try:
        return requests.get(issuer.rstrip("/") + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ekyc.review.demo", description=__doc__)
    parser.add_argument("--issuer", default="http://127.0.0.1:8000")
    parser.add_argument("--wait", type=float, default=180.0,
                        help="seconds to wait for the pipeline's decision")
    parser.add_argument("--wait-start", type=float, default=0.0,
                        help="seconds to wait for the IdP to start answering /healthz")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait_start
    while time.monotonic() < deadline and not _healthy(args.issuer):
        time.sleep(0.5)
    try:
        status = submit_demo_case(args.issuer, wait=args.wait)
    except requests.RequestException as exc:
        print(f"demo review case: the onboarding API did not answer ({exc.__class__.__name__})",
              file=sys.stderr)
        return 1
    reasons = ", ".join(r["code"] for r in status.get("reasons", [])) or "-"
    print(f"demo case {status['case_id']}: {status.get('state')} ({reasons})")
    return 0 if status.get("state") == "needs_review" else 1


if __name__ == "__main__":
    sys.exit(main())
