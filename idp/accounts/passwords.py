"""Password hashing with argon2id (RFC 9106 parameters as chosen by argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2id with OWASP's recommended minimum (19 MiB, t=2, p=1): about 25 ms per check here, so
# one core verifies ~40 logins/s; RFC 9106's 64 MiB/t=3/p=4 costs 280 ms and would need ten times
# the CPU at login peaks. Older hashes are upgraded on the next login (needs_rehash).
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
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
