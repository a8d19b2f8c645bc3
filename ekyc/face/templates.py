"""Face templates of issued accounts: the rows the 1:N duplicate index (`ekyc.face.index`) is
built from.

One row per enrolled face: the account it belongs to, the case that enrolled it, the model
(`ModelInfo` as "name/version": only templates of the same model are ever compared) and the
128-d vector, encrypted with the app's data key (`idp.crypto`, Fernet). `id` only grows and is
never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL), so the index refreshes by
reading the rows above the highest id it has seen.

    from ekyc.face.templates import enroll
    enroll(account.id, case.id, encoding)     # inside the caller's transaction; it commits
"""

from __future__ import annotations

import base64
import datetime as dt

import numpy as np
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp import crypto
from idp.extensions import db
from idp.models import utcnow

DIM = 128  # dlib's embedding; another model with another size gets its own format tag
_DTYPE = np.dtype("<f4")
_TAG = "f4:"  # plaintext format: tag + base64(little-endian float32 bytes)


class FaceTemplate(db.Model):
    """The face of an issued account, encrypted; read by the duplicate index."""

    __tablename__ = "ekyc_face_templates"
    # AUTOINCREMENT: SQLite would otherwise reuse the id of a deleted last row, and the index's
    # watermark would skip the new row.
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"),
                                            index=True)
    case_id: Mapped[str | None] = mapped_column(
        ForeignKey("ekyc_cases.id", ondelete="SET NULL"), nullable=True, index=True)
    model: Mapped[str] = mapped_column(String(128))  # ModelInfo "name/version"
    vector_encrypted: Mapped[str] = mapped_column(Text)  # Fernet("f4:" + base64(float32 LE))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


def check_vector(vector) -> np.ndarray:
    """The vector as a finite 1-d float32 array, or ValueError (never echoes the values)."""
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError("a face template must be a finite 1-d vector")
    return arr


def seal(vector) -> str:
    """Encrypted text of a vector (what `vector_encrypted` holds)."""
    raw = check_vector(vector).astype(_DTYPE).tobytes()
    return crypto.encrypt(_TAG + base64.b64encode(raw).decode())


def open_sealed(token: str) -> np.ndarray:
    """The float32 vector of `seal`'s output (RuntimeError when the data key changed)."""
    return unpack(crypto.decrypt(token))


def unpack(plain: str) -> np.ndarray:
    if not plain.startswith(_TAG):
        raise ValueError("unknown face template format")
    raw = base64.b64decode(plain[len(_TAG):])
    if len(raw) % _DTYPE.itemsize:
        raise ValueError("truncated face template")
    return np.frombuffer(raw, dtype=_DTYPE).astype(np.float32)


def enroll(account_id: str, case_id: str | None, encoding) -> FaceTemplate:
    """Add the face `encoding` (an `ekyc.face.Encoding`) of an issued account to the 1:N index.

    Within the caller's transaction (flushed, not committed): the template becomes searchable
    once the caller commits; a rollback leaves nothing behind. Returns the new row.
    """
    row = FaceTemplate(account_id=account_id, case_id=case_id, model=str(encoding.model),
                       vector_encrypted=seal(encoding.vector))
    db.session.add(row)
    db.session.flush()
    return row


__all__ = ["DIM", "FaceTemplate", "check_vector", "enroll", "open_sealed", "seal", "unpack"]
