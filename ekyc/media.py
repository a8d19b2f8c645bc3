"""The media store: document and face images, encrypted at rest, deleted on a retention schedule.

Images are sensitive personal data (biometrics under Law 91/2025/QH15), so:
- every object is encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from
  DATA_ENCRYPTION_KEY with its own context, so it differs from the key that protects ID
  numbers; the object's storage key is the associated data, so ciphertexts cannot be swapped;
- the database row holds the SHA-256 of the plaintext: tampering at rest is detected on read;
- objects expire `MEDIA_RETENTION_DAYS` after the case's decision (`purge_expired`, run by
  `flask ekyc purge-media`); cases left unfinished expire after EKYC_CASE_TTL plus that;
- nothing here logs image bytes, digests or anything else derived from a person.

`MediaStore` is the interface; `LocalMediaStore` (a directory) is the default, an
S3-compatible store can implement the same four methods.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from idp import crypto
from idp.extensions import db

from .models import Case, MediaObject, new_id, utcnow

log = logging.getLogger(__name__)
MAGIC = b"DDM1"  # file format version: MAGIC || 12-byte nonce || ciphertext+tag
KEY_CONTEXT = b"dinhdanh/ekyc-media/aes-256-gcm/v1"
REPLACED_KINDS = ("front", "back", "portrait")  # a new upload of these replaces the old one


class MediaError(RuntimeError):
    """A stored object is missing, unreadable or was altered at rest."""


class MediaStore(Protocol):
    """Where encrypted objects live. Keys are relative paths made of ids, never of PII."""

    def put(self, key: str, blob: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under `prefix` (a case's folder), rows or not."""


class LocalMediaStore:
    """Objects as files under one directory (mode 0700), written atomically (mode 0600)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise MediaError("media key escapes the store")
        return path

    def put(self, key: str, blob: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise MediaError("media object is missing") from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        try:  # drop the case's folder once it is empty
            path.parent.rmdir()
        except OSError:
            pass

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete_prefix(self, prefix: str) -> None:
        folder = self._path(prefix)
        if folder.is_dir():
            shutil.rmtree(folder)


def media_store() -> MediaStore:
    """The store configured for this app (one per app, created on first use)."""
    app = current_app
    store = app.extensions.get("ekyc.media_store")
    if store is None:
        store = LocalMediaStore(app.config["MEDIA_DIR"])
        app.extensions["ekyc.media_store"] = store
    return store


def _aead() -> AESGCM:
    material = current_app.config["DATA_ENCRYPTION_KEY"].encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_CONTEXT).derive(material)
    return AESGCM(key)


def seal(key: str, plain: bytes) -> bytes:
    """Encrypt `plain` for storage under `key` (bound to it as associated data)."""
    nonce = secrets.token_bytes(12)
    return MAGIC + nonce + _aead().encrypt(nonce, plain, key.encode())


def unseal(key: str, blob: bytes) -> bytes:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 12 + 16:
        raise MediaError("media object has an unknown format")
    nonce = blob[len(MAGIC):len(MAGIC) + 12]
    try:
        return _aead().decrypt(nonce, blob[len(MAGIC) + 12:], key.encode())
    except InvalidTag as exc:
        raise MediaError("media object fails authentication (altered, or key changed)") from exc


def _initial_expiry(now: dt.datetime) -> dt.datetime:
    conf = current_app.config
    return now + dt.timedelta(seconds=conf["EKYC_CASE_TTL"], days=conf["MEDIA_RETENTION_DAYS"])


def save(case: Case, kind: str, data: bytes, content_type: str) -> MediaObject:
    """Encrypt and store `data` as the case's `kind` image; returns the (uncommitted) row.

    A new front, back or portrait replaces the previous one, whose bytes are deleted at once.
    """
    if kind in REPLACED_KINDS:
        for old in case.live_media(kind):
            discard(old)
    now = utcnow()
    obj = MediaObject(case_id=case.id, kind=kind, sha256=hashlib.sha256(data).hexdigest(),
                      size=len(data), content_type=content_type, created_at=now,
                      expires_at=_initial_expiry(now))
    obj.id = new_id()
    obj.path = f"{case.id}/{obj.id}.bin"
    media_store().put(obj.path, seal(obj.path, data))
    case.media.append(obj)
    return obj


def load(obj: MediaObject) -> bytes:
    """Decrypt one stored image and check it is the one that was stored."""
    if obj.deleted_at is not None:
        raise MediaError("media object was deleted")
    plain = unseal(obj.path, media_store().get(obj.path))
    if not crypto.equal(hashlib.sha256(plain).hexdigest(), obj.sha256):
        raise MediaError("media object digest does not match")
    return plain


def discard(obj: MediaObject, now: dt.datetime | None = None) -> None:
    """Delete the bytes of one object and mark its row deleted (the caller commits)."""
    media_store().delete(obj.path)
    obj.deleted_at = now or utcnow()


def set_retention(case: Case, decided: bool) -> None:
    """Start the retention clock at the decision; keep media while an operator reviews."""
    expires = None
    if decided:
        start = case.decided_at or utcnow()
        expires = start + dt.timedelta(days=current_app.config["MEDIA_RETENTION_DAYS"])
    for obj in case.live_media():
        obj.expires_at = expires


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete every media object whose retention ended; returns how many were deleted.

    The personal data read from the card (`Case.reading_encrypted`, `pid_encrypted`) goes with
    the images of decided cases; the keyed hash of the ID number stays to link later attempts.
    """
    now = now or utcnow()
    expired = db.session.scalars(
        db.select(MediaObject).where(MediaObject.deleted_at.is_(None),
                                     MediaObject.expires_at.is_not(None),
                                     MediaObject.expires_at <= now)).all()
    cases = set()
    for obj in expired:
        discard(obj, now)
        cases.add(obj.case_id)
    for case_id in cases:
        case = db.session.get(Case, case_id)
        if case is not None and not case.live_media():
            # Also what a crashed transaction wrote without a row: the whole folder goes.
            media_store().delete_prefix(case_id)
            case.media_purged_at = now
            if case.decided_at is not None:
                case.reading_encrypted = None
                case.pid_encrypted = None
    db.session.commit()
    if expired:
        log.info("media purge: %d objects of %d cases deleted", len(expired), len(cases))
    return len(expired)
