"""Card photos and selfies for trying the onboarding by hand (`make demo-cards`).

Writes, for a few citizens of the register stub who have no account yet, are alive and hold a
valid card, a synthetic photo of the card's front and back (`ekyc.document.synth`) and, when the
shared test faces are present, a selfie: another photo of the face printed on that card. A
`README.txt` in the folder lists who is who. Development only: these people are synthetic.

    uv run python -m ekyc.demo_cards [OUT_DIR] [--count 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from register import seed

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "instance" / "demo-cards"


def demo_citizens(count: int) -> list[seed.Citizen]:
    """Alive citizens with a valid card, skipping #0 (the seeded demo account already exists);
    those with a portrait in the shared test faces first, so a selfie can go with the card."""
    people = [c for c in seed.synthetic_citizens()[1:400] if c.status == "alive"]
    people.sort(key=lambda c: seed.portrait_identity(c) is None)
    return people[:count]


def write(out: Path, count: int) -> list[str]:
    from ekyc.document.synth import make_card

    out.mkdir(parents=True, exist_ok=True)
    lines = ["Synthetic citizens of the register stub (development data, not real people).", ""]
    for n, citizen in enumerate(demo_citizens(count), start=1):
        front, back, _truth = make_card(citizen, seed=n)
        stem = f"{n}-{citizen.national_id}"
        (out / f"{stem}-front.jpg").write_bytes(front)
        (out / f"{stem}-back.jpg").write_bytes(back)
        files = [f"{stem}-front.jpg", f"{stem}-back.jpg"]
        identity = seed.portrait_identity(citizen)
        images = seed.identity_images(identity) if identity else []
        folder = seed.faces_dir()
        if folder and len(images) > 1:  # the first image is the register's portrait
            selfie = out / f"{stem}-selfie.jpg"
            shutil.copyfile(folder / images[-1], selfie)
            files.append(selfie.name)
        lines.append(f"{n}. {citizen.full_name}, ID {citizen.national_id}, born "
                     f"{citizen.date_of_birth.isoformat()}: {', '.join(files)}")
    (out / "README.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ekyc.demo_cards", description=__doc__)
    parser.add_argument("out_dir", nargs="?", default=str(DEFAULT_OUT))
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args(argv)
    for line in write(Path(args.out_dir), max(1, min(args.count, 50))):
        print(line)
    print(f"written to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
