"""Database models of the IdP: what must survive a crash lives here, inside transactions.

Short-lived single-use state (codes, PAR URIs, SSO sessions, replay caches) lives in Redis
(`idp.store`), never here.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .client_mixin import ClientBehaviour
from .extensions import db


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


class Account(db.Model):
    """A citizen's electronic identification account, linked to their personal ID number."""

    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # citizen | staff. A staff account (an operator, supervisor or auditor of the console) has
    # a username and no ID number, and may only sign in to staff clients (Client.audience).
    kind: Mapped[str] = mapped_column(String(8), default="citizen")
    username: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    pid_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True,
                                                 nullable=True)  # keyed hash (citizens)
    pid_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)  # Fernet(ID number)
    full_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(100), default="")
    given_name: Mapped[str] = mapped_column(String(100), default="")
    birthdate: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    gender: Mapped[str] = mapped_column(String(10), default="")
    address: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    phone_number_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    level: Mapped[int] = mapped_column(Integer, default=1)  # eID level 1 or 2
    # active | pending_activation (eKYC approved, no password or second factor yet) |
    # locked (register: deceased or card revoked; an operator unlocks). Only active signs in.
    status: Mapped[str] = mapped_column(String(24), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    register_checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    onboarded_case_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)  # argon2id
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)  # refuses a replayed code
    locale: Mapped[str] = mapped_column(String(8), default="vi")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    @property
    def active(self) -> bool:
        return self.status == ACCOUNT_ACTIVE


ACCOUNT_ACTIVE = "active"
ACCOUNT_PENDING_ACTIVATION = "pending_activation"
ACCOUNT_LOCKED = "locked"


class WebAuthnCredential(db.Model):
    """A passkey registered by a citizen (phishing-resistant factor, amr `hwk`)."""

    __tablename__ = "webauthn_credentials"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"),
                                            index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[str] = mapped_column(Text)  # base64url COSE key
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Operator(db.Model):
    """A console role held by a staff account: operator, supervisor or auditor.

    The person signs in through the IdP with their staff account (`account_id`; password and
    second factor live there); this row says what the console lets them see and do.
    `province`, when set, is the 3-digit province code of the counter they work at.
    """

    __tablename__ = "operators"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)  # unused (account)
    role: Mapped[str] = mapped_column(String(16), default="operator")
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    province: Mapped[str | None] = mapped_column(String(3), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


OPERATOR_ROLES = ("operator", "supervisor", "auditor")


class Client(db.Model, ClientBehaviour):
    """A relying party. Metadata follows RFC 7591 names; behaviour lives in idp.clients."""

    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    secret_expires_at: Mapped[int] = mapped_column(Integer, default=0)
    registration_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_metadata: Mapped[dict] = mapped_column(JSON, default=dict)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)  # no consent screen
    public_subject: Mapped[bool] = mapped_column(Boolean, default=False)  # operator decision
    # citizen | staff: which kind of account may sign in to this client (the operator console
    # is the staff client; citizens' portals never see a staff account, nor the console a
    # citizen's)
    audience: Mapped[str] = mapped_column(String(8), default="citizen")
    issued_at: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Consent(db.Model):
    """What a citizen allowed a portal to see; remembered per client and scope set."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("account_id", "client_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    scopes: Mapped[str] = mapped_column(Text, default="")
    claims: Mapped[str] = mapped_column(Text, default="")  # space-separated extra claims
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RefreshToken(db.Model):
    """One refresh token of a rotation family (grant). A reused token revokes its family."""

    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"),
                                           index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"),
                                            index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[dict] = mapped_column(JSON, default=dict)  # auth_time, acr, amr, sid, claims
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class SigningKey(db.Model):
    """A signing key, private half encrypted. Retired keys stay published for a grace period."""

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    private_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class AuditEvent(db.Model):
    """Append-only, hash-chained record of security events. Never holds secrets or ID numbers.

    The log is `AUDIT_CHAINS` independent chains (so appends need not all wait for one lock):
    `chain` is the entry's chain (0, 1, ...; entries from before chains were split are in
    chain 0), `seq` its place in that chain (1, 2, ...), `prev_hash` the `hash` of entry
    seq - 1 of the same chain and `hash` the SHA-256 of this entry's canonical form
    (`idp.audit.entry_hash`); `flask audit verify` recomputes every chain. `actor` is who
    acted: a console user's username, "citizen", "system" or a worker.
    """

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_events_chain_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class AuditChainHead(db.Model):
    """The last entry of one audit chain: the row with id c + 1 is chain c's (id 1 is chain 0,
    the chain from before chains were split, so its row kept its id). Appending updates the
    chain's row first, which serialises appends to that chain in PostgreSQL (a row lock) and
    SQLite (the database lock) alike, so no chain ever forks."""

    __tablename__ = "audit_chain_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64), default="")
