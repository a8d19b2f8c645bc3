"""Password hashing with argon2id (RFC 9106 parameters as chosen by argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, 64 MiB, t=3, p=4
# Verified when the account does not exist, so timing does not reveal which numbers exist.
_DUMMY = _hasher.hash("no such account: constant-time decoy")

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def strong_enough(password: str) -> bool:
    classes = sum(any(f(c) for c in password) for f in (str.islower, str.isupper, str.isdigit))
    return len(password) >= MIN_LENGTH and classes >= 2
