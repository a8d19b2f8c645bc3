"""The media store (ekyc/media.py): images encrypted at rest, checked on read, purged on time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ekyc import media, policy, service
from ekyc.models import Case, MediaObject
from idp.extensions import db
from tests.ekyc.conftest import photo, utc


def _files(app) -> list[Path]:
    return [p for p in Path(app.config["MEDIA_DIR"]).rglob("*") if p.is_file()]


def _case():
    case, _ = service.start_case(channel="web", locale="vi",
                                 consent_version=policy.CONSENT_VERSION)
    return case


def test_no_plaintext_on_disk_and_the_image_reads_back(ekyc_app):
    app = ekyc_app()
    image = photo()
    with app.app_context():
        case = _case()
        obj = media.save(case, "front", image, "image/jpeg")
        db.session.commit()
        [path] = _files(app)
        stored = path.read_bytes()
        assert image[:200] not in stored and b"JFIF" not in stored and b"\xff\xd8\xff" not in stored
        assert case.id not in stored.decode("latin-1")
        assert path.stat().st_mode & 0o077 == 0  # owner only
        assert media.load(obj) == image


def test_tampering_at_rest_is_detected(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case = _case()
        first = media.save(case, "front", photo(), "image/jpeg")
        second = media.save(case, "back", photo(color=(0, 0, 0)), "image/jpeg")
        db.session.commit()
        path = Path(app.config["MEDIA_DIR"]) / first.path
        blob = bytearray(path.read_bytes())
        blob[-1] ^= 1
        path.write_bytes(bytes(blob))
        with pytest.raises(media.MediaError):
            media.load(first)
        # A ciphertext moved to another object's place does not decrypt there either.
        (Path(app.config["MEDIA_DIR"]) / second.path).write_bytes(
            media.seal(first.path, b"someone else's image"))
        with pytest.raises(media.MediaError):
            media.load(second)


def test_the_media_key_is_not_the_id_number_key(ekyc_app):
    """A different key context: the Fernet key for ID numbers cannot open the images."""
    from cryptography.fernet import Fernet, InvalidToken

    app = ekyc_app()
    with app.app_context():
        blob = media.seal("x/y.bin", b"face")
        with pytest.raises(InvalidToken):
            Fernet(app.config["DATA_ENCRYPTION_KEY"].encode()).decrypt(blob)


def test_a_new_side_replaces_the_old_one_on_disk(ekyc_app):
    app = ekyc_app()
    with app.app_context():
        case = _case()
        old = media.save(case, "front", photo(), "image/jpeg")
        db.session.commit()
        new = media.save(case, "front", photo(color=(1, 2, 3)), "image/jpeg")
        db.session.commit()
        assert old.deleted_at is not None and [m.id for m in case.live_media("front")] == [new.id]
        assert len(_files(app)) == 1


def test_purge_deletes_images_after_retention_and_not_before(ekyc_app):
    app = ekyc_app(MEDIA_RETENTION_DAYS=30)
    with app.app_context():
        case = _case()
        media.save(case, "front", photo(), "image/jpeg")
        media.save(case, "back", photo(), "image/jpeg")
        case.reading_encrypted, case.pid_encrypted = "secret-reading", "secret-pid"
        case.pid_hash = "keyed-hash"
        case.decided_at = utc()
        media.set_retention(case, decided=True)
        db.session.commit()
        assert media.purge_expired(now=utc(days=29)) == 0
        assert len(_files(app)) == 2
        # A worker that died after writing an image but before committing its row.
        orphan = Path(app.config["MEDIA_DIR"]) / case.id / "orphan.bin"
        orphan.write_bytes(media.seal(f"{case.id}/orphan.bin", b"portrait"))
        assert media.purge_expired(now=utc(days=31)) == 2
        assert _files(app) == []
        stored = db.session.get(Case, case.id)
        assert all(m.deleted_at is not None for m in stored.media)
        assert stored.media_purged_at is not None
        assert stored.reading_encrypted is None and stored.pid_encrypted is None
        assert stored.pid_hash == "keyed-hash"  # later attempts can still be linked
        assert media.purge_expired(now=utc(days=400)) == 0  # idempotent


def test_abandoned_cases_expire_too_and_reviewed_ones_wait(ekyc_app):
    app = ekyc_app(MEDIA_RETENTION_DAYS=1, EKYC_CASE_TTL=3600)
    with app.app_context():
        abandoned, reviewed = _case(), _case()
        media.save(abandoned, "front", photo(), "image/jpeg")
        media.save(reviewed, "front", photo(), "image/jpeg")
        media.set_retention(reviewed, decided=False)  # an officer is looking at it
        db.session.commit()
        assert media.purge_expired(now=utc(days=2)) == 1
        live = db.session.scalars(db.select(MediaObject).filter_by(deleted_at=None)).all()
        assert [m.case_id for m in live] == [reviewed.id]


def test_flask_ekyc_purge_media_command(ekyc_app):
    app = ekyc_app(MEDIA_RETENTION_DAYS=1)
    with app.app_context():
        case = _case()
        media.save(case, "front", photo(), "image/jpeg")
        case.decided_at = utc(days=-3)
        media.set_retention(case, decided=True)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["ekyc", "purge-media"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 media objects" in result.output
    assert _files(app) == []


def test_media_is_never_logged(ekyc_app, caplog):
    app = ekyc_app(MEDIA_RETENTION_DAYS=1)
    image = photo()
    with app.app_context():
        case = _case()
        obj = media.save(case, "front", image, "image/jpeg")
        case.decided_at = utc(days=-3)
        media.set_retention(case, decided=True)
        db.session.commit()
        media.load(obj)
        media.purge_expired()
    text = caplog.text
    assert obj.sha256 not in text and obj.path not in text and case.id not in text
    assert dt is not None
