"""Load the synthetic population (register.seed) into the register database.

Idempotent: citizens already present are left alone (so a status set with `set-status`
survives a re-seed); missing ones are bulk-inserted in chunks (10,000 rows in a few seconds on
SQLite); a citizen whose portrait was missing gets it when the faces-dev data is now present.
Portraits are stored as JPEG bytes, cropped to 3:4 and resized to 240x320.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

from register import seed as synthetic
from register.models import CitizenRecord, db

PORTRAIT_SIZE = (240, 320)
CHUNK = 1000


def portrait_jpeg(path: Path) -> bytes:
    """The register's portrait format: EXIF rotation applied, centre crop 3:4, 240x320 JPEG."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        fitted = ImageOps.fit(img, PORTRAIT_SIZE, Image.Resampling.LANCZOS, centering=(0.5, 0.4))
    out = io.BytesIO()
    fitted.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def _row(citizen: synthetic.Citizen) -> dict:
    path = synthetic.portrait_path(citizen)
    return {
        "national_id": citizen.national_id,
        "full_name": citizen.full_name,
        "family_name": citizen.family_name,
        "given_name": citizen.given_name,
        "date_of_birth": citizen.date_of_birth,
        "sex": citizen.sex,
        "residence": citizen.residence,
        "province_code": citizen.province_code,
        "hometown": citizen.hometown,
        "card_issue_date": citizen.card_issue_date,
        "card_expiry_date": citizen.card_expiry_date,
        "old_id": citizen.old_id,
        "status": citizen.status,
        "status_changed_at": None,
        "portrait_source": citizen.portrait_file if path else None,
        "portrait": portrait_jpeg(path) if path else None,
    }


def seed_database(count: int, seed: int) -> dict:
    """Insert the missing citizens of `synthetic_citizens(count, seed)`; returns counts."""
    citizens = synthetic.synthetic_citizens(count, seed)
    existing = dict(db.session.execute(
        db.select(CitizenRecord.national_id, CitizenRecord.portrait_source)).all())
    missing = [c for c in citizens if c.national_id not in existing]
    inserted = 0
    for start in range(0, len(missing), CHUNK):
        rows = [_row(c) for c in missing[start:start + CHUNK]]
        db.session.execute(db.insert(CitizenRecord), rows)
        db.session.commit()
        inserted += len(rows)
    portraits_added = 0
    for citizen in citizens:
        if citizen.national_id in existing and existing[citizen.national_id] is None:
            path = synthetic.portrait_path(citizen)
            if path is not None:
                db.session.execute(
                    db.update(CitizenRecord)
                    .where(CitizenRecord.national_id == citizen.national_id)
                    .values(portrait=portrait_jpeg(path), portrait_source=citizen.portrait_file))
                portraits_added += 1
    db.session.commit()
    total = db.session.scalar(db.select(db.func.count(CitizenRecord.national_id)))
    with_portrait = db.session.scalar(db.select(db.func.count(CitizenRecord.national_id))
                                      .where(CitizenRecord.portrait_source.is_not(None)))
    return {"inserted": inserted, "portraits_added": portraits_added, "total": total,
            "with_portrait": with_portrait}
