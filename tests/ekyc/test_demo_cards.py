"""`make demo-cards`: card photos a person can use to try the onboarding by hand."""

from __future__ import annotations

from ekyc import demo_cards
from ekyc.document.reader import read_document
from register import seed


def test_demo_cards_are_readable_cards_of_alive_register_citizens(tmp_path):
    lines = demo_cards.write(tmp_path, 1)
    citizen = demo_cards.demo_citizens(1)[0]
    assert citizen.status == "alive" and citizen.national_id != "001199000001"
    front = tmp_path / f"1-{citizen.national_id}-front.jpg"
    back = tmp_path / f"1-{citizen.national_id}-back.jpg"
    assert citizen.national_id in (tmp_path / "README.txt").read_text(encoding="utf-8")
    assert any(citizen.full_name in line for line in lines)
    reading = read_document(front.read_bytes(), back.read_bytes())
    assert reading.national_id == citizen.national_id
    if seed.faces_dir() is not None:  # with the shared faces, a selfie of the card's face
        assert (tmp_path / f"1-{citizen.national_id}-selfie.jpg").stat().st_size > 1000
