"""Small cryptographic helpers shared by every package: random values, hashes, encryption."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def random_token(nbytes: int = 32) -> str:
    """URL-safe random value; 32 bytes = 256 bits (codes need at least 128)."""
    return secrets.token_urlsafe(nbytes)


def sha256_b64(value: str) -> str:
    return b64url(hashlib.sha256(value.encode()).digest())


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def keyed_hash(*parts: str) -> str:
    """HMAC-SHA256 under PAIRWISE_SECRET: lookups and pairwise subjects that cannot be reversed."""
    key = current_app.config["PAIRWISE_SECRET"].encode()
    msg = "\x1f".join(parts).encode()
    return b64url(hmac.new(key, msg, hashlib.sha256).digest())


def equal(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two secrets."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def _fernet() -> Fernet:
    return Fernet(current_app.config["DATA_ENCRYPTION_KEY"].encode())


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:  # wrong DATA_ENCRYPTION_KEY: say so instead of a bare error
        raise RuntimeError("cannot decrypt stored data: DATA_ENCRYPTION_KEY changed?") from exc
