"""Database models of eKYC onboarding: cases, their checks and history, media, challenges.

What must survive a worker crash lives here, inside transactions: the case state, each check's
recorded result, the worker lease. Personal data is kept encrypted (the ID number and the fields
read from the card) or referenced (images live encrypted in the media store, `ekyc.media`);
check details hold codes and scores, not names or numbers.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models import new_id, utcnow


class Case(db.Model):
    """One onboarding attempt by one citizen, from consent to decision.

    `state` follows the machine in `ekyc.cases`. `token_hash` is the hash of the bearer case
    token shown once to the citizen's browser or app. `lease_owner`/`lease_expires_at` say
    which worker is processing it; an expired lease means that worker died and the sweeper may
    hand the case to another one.
    """

    __tablename__ = "ekyc_cases"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    state: Mapped[str] = mapped_column(String(24), default="created", index=True)
    channel: Mapped[str] = mapped_column(String(16), default="web")  # web | api | counter
    locale: Mapped[str] = mapped_column(String(8), default="vi")
    token_hash: Mapped[str] = mapped_column(String(64))
    consent_version: Mapped[str] = mapped_column(String(32))
    consent_text_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the text shown
    consented_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    pid_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    pid_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    reading_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)  # Fernet(JSON)
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True, unique=True)
    reason_codes: Mapped[list] = mapped_column(JSON, default=list)  # of the decision
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # register retries so far
    # Runs started since the last clean stop: counts workers dying on this case one after the
    # other (EKYC_MAX_RUNS sends it to an operator); a wait for the register resets it.
    runs: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True,
                                                                index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    media_purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # The ID number's 3-digit province code (DOMAIN.md 1), set once the card is read: the
    # console's queue filter and dashboard group by it without decrypting numbers.
    province: Mapped[str | None] = mapped_column(String(3), nullable=True, index=True)
    # The level the account gets when the case is approved: 1 remote, 2 at a counter with an
    # operator who saw the citizen and the card in person (channel "counter").
    target_level: Mapped[int] = mapped_column(Integer, default=1)
    counter_operator_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # The console: who holds the case in review, since when (claim / assign).
    assignee_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    review_since: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True,
                                                             index=True)

    checks: Mapped[list[CaseCheck]] = relationship(
        back_populates="case", order_by="CaseCheck.id", cascade="all, delete-orphan",
        passive_deletes=True)
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan",
        passive_deletes=True)
    media: Mapped[list[MediaObject]] = relationship(
        back_populates="case", order_by="MediaObject.created_at", cascade="all, delete-orphan",
        passive_deletes=True)

    def live_media(self, kind: str | None = None) -> list[MediaObject]:
        """Stored, not deleted media of this case (of one kind, or every kind)."""
        return [m for m in self.media if m.deleted_at is None and
                (kind is None or m.kind == kind or (kind == "selfie" and
                                                    m.kind.startswith("selfie_")))]


class CaseCheck(db.Model):
    """The recorded result of one check of the decision policy on one case.

    A check may be recorded more than once (a `pending` register lookup, then its answer); the
    latest final row (pass, fail, review, skipped) is the one that counts. `position` is the
    check's place in `ekyc.policy.CHECKS`. `detail` holds codes and numbers, never raw PII.
    """

    __tablename__ = "ekyc_case_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("ekyc_cases.id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(8))  # pass|fail|review|skipped|pending|error
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[str] = mapped_column(String(64), default="")
    reason_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="checks")

    @property
    def final(self) -> bool:
        return self.outcome in FINAL_OUTCOMES


FINAL_OUTCOMES = ("pass", "fail", "review", "skipped")


class CaseEvent(db.Model):
    """One state transition of a case (its history); `actor` says who caused it."""

    __tablename__ = "ekyc_case_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("ekyc_cases.id", ondelete="CASCADE"),
                                         index=True)
    from_state: Mapped[str] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64), default="system")
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="events")


class CaseDecision(db.Model):
    """A decision taken in the console on a case (`ekyc.review.decisions`).

    `kind`: approve | reject | recapture | override. An override (approving what the pipeline
    rejected, or a case with a failed check) waits with `status` "pending" until a supervisor
    other than its author confirms it ("confirmed", `confirmed_by`) or refuses it ("refused");
    the other kinds take effect at once ("done"). `note` is the operator's free text, kept
    encrypted (it may name the citizen).
    """

    __tablename__ = "ekyc_case_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("ekyc_cases.id", ondelete="CASCADE"),
                                         index=True)
    kind: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str] = mapped_column(String(64))
    note_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    operator_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(12), default="done", index=True)
    confirmed_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class MediaObject(db.Model):
    """An image of a case in the media store: where it is, its digest, when it must go.

    `kind` is front | back | portrait (cut from the card) | selfie_0..selfie_N. The bytes are
    encrypted in the store; `sha256` is over the plaintext so tampering at rest is detected.
    """

    __tablename__ = "ekyc_media"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("ekyc_cases.id", ondelete="CASCADE"),
                                         index=True)
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(255))  # key inside the store, not a full path
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    case: Mapped[Case] = relationship(back_populates="media")


class Challenge(db.Model):
    """A random liveness challenge: actions to perform, bound to a one-time nonce and deadline.

    Only the nonce's hash is stored. `timestamps_ms` and `frame_count` describe the frames that
    answered it, for the liveness check (issue 4).
    """

    __tablename__ = "ekyc_challenges"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("ekyc_cases.id", ondelete="CASCADE"),
                                         index=True)
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    actions: Mapped[list] = mapped_column(JSON, default=list)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    frame_count: Mapped[int] = mapped_column(Integer, default=0)
    timestamps_ms: Mapped[list] = mapped_column(JSON, default=list)

    @property
    def used(self) -> bool:
        return self.used_at is not None


BANDS = 4  # 16-bit bands of a 64-bit fingerprint
BAND_BITS = 16


class FramePrint(db.Model):
    """The perceptual fingerprint (64-bit) of one selfie frame, to find frames replayed from
    another case (`ekyc.biometrics.replayed_from`). Stored signed; each 16-bit band is indexed
    so near-identical fingerprints are found by equality on one band."""

    __tablename__ = "ekyc_frame_prints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("ekyc_cases.id", ondelete="CASCADE"),
                                         index=True)
    challenge_id: Mapped[str] = mapped_column(String(36))
    frame: Mapped[int] = mapped_column(Integer)
    signed: Mapped[int] = mapped_column(BigInteger)
    band0: Mapped[int] = mapped_column(Integer, index=True)
    band1: Mapped[int] = mapped_column(Integer, index=True)
    band2: Mapped[int] = mapped_column(Integer, index=True)
    band3: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def value(self) -> int:
        return self.signed & 0xFFFF_FFFF_FFFF_FFFF

    @staticmethod
    def bands(value: int) -> list[int]:
        return [(value >> (BAND_BITS * i)) & 0xFFFF for i in range(BANDS)]

    @classmethod
    def of(cls, case_id: str, challenge_id: str, frame: int, value: int) -> FramePrint:
        value &= 0xFFFF_FFFF_FFFF_FFFF
        signed = value - (1 << 64) if value >= 1 << 63 else value
        b = cls.bands(value)
        return cls(case_id=case_id, challenge_id=challenge_id, frame=frame, signed=signed,
                   band0=b[0], band1=b[1], band2=b[2], band3=b[3])

    @classmethod
    def latest_of_case(cls, case_id: str) -> list[FramePrint]:
        """The prints of the case's most recent answered challenge."""
        rows = db.session.scalars(db.select(cls).where(cls.case_id == case_id)
                                  .order_by(cls.id)).all()
        if not rows:
            return []
        last = rows[-1].challenge_id
        return [r for r in rows if r.challenge_id == last]

    @classmethod
    def band_candidates(cls, own: FramePrint, *, exclude_case: str,
                        limit: int = 200) -> list[FramePrint]:
        """Prints of other cases sharing at least one band with `own`."""
        return list(db.session.scalars(
            db.select(cls).where(cls.case_id != exclude_case,
                                 db.or_(cls.band0 == own.band0, cls.band1 == own.band1,
                                        cls.band2 == own.band2, cls.band3 == own.band3))
            .limit(limit)))


from ekyc.face.templates import FaceTemplate

__all__ = ["FINAL_OUTCOMES", "Case", "CaseCheck", "CaseDecision", "CaseEvent", "Challenge", "FaceTemplate",
           "FramePrint", "MediaObject", "new_id", "utcnow"]
