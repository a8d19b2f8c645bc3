"""Tables of the register stub, in its own database with its own SQLAlchemy object.

The register is a separate service: it never shares `idp.extensions.db` or the IdP's Alembic
history. Its schema is created with `db.metadata.create_all()` at start (`create_app`, `seed`);
a stub with synthetic data needs no migrations, and every table name starts with `register_`
so that pointing it at a shared database by mistake cannot collide with the IdP's tables.
"""

from __future__ import annotations

import datetime as dt

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


def utcnow() -> dt.datetime:
    """Naive UTC (stored as such on SQLite and PostgreSQL alike)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class CitizenRecord(db.Model):
    """One person in the population register (synthetic)."""

    __tablename__ = "register_citizens"

    national_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(120))
    family_name: Mapped[str] = mapped_column(String(40))
    given_name: Mapped[str] = mapped_column(String(80))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    residence: Mapped[str] = mapped_column(String(250))
    province_code: Mapped[str] = mapped_column(String(3))
    hometown: Mapped[str] = mapped_column(String(250))
    card_issue_date: Mapped[dt.date] = mapped_column(Date)
    card_expiry_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    old_id: Mapped[str] = mapped_column(String(9), default="")
    status: Mapped[str] = mapped_column(String(16), default="alive")
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    portrait_source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # JPEG bytes, ~240x320; deferred so that verify calls never load them.
    portrait: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))


class AccessLog(db.Model):
    """Every authenticated (or refused) API call: who, why, about whom (keyed hash), outcome."""

    __tablename__ = "register_access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    caller: Mapped[str | None] = mapped_column(String(200), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(200), nullable=True)
    endpoint: Mapped[str] = mapped_column(String(60))
    national_id_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    outcome: Mapped[str] = mapped_column(String(60))
    jti: Mapped[str | None] = mapped_column(String(200), nullable=True)


class UsedAssertion(db.Model):
    """Single-use `jti` values of client assertions, kept until they could no longer verify."""

    __tablename__ = "register_used_assertions"

    jti_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(iss, jti)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class RegisterKey(db.Model):
    """The register's own ES256 key for signing status notifications (stub: stored in clear)."""

    __tablename__ = "register_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), default="ES256")
    private_jwk: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class OutboxMessage(db.Model):
    """A signed status notification waiting for (or done with) delivery to the IdP."""

    __tablename__ = "register_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict] = mapped_column(JSON)  # the event's members
    token: Mapped[str] = mapped_column(Text)  # the SET last sent (re-signed on every attempt)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)


class FaultState(db.Model):
    """Faults set at runtime through the admin API; one row (id 1), shared by every worker."""

    __tablename__ = "register_faults"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    error_rate: Mapped[float] = mapped_column(Float, default=0.0)
    outage: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
