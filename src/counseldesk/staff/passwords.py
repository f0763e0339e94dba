"""Password hashing with argon2id.

Hashing and verifying are deliberately slow (about 0.1 s of CPU each), so they run in a worker
thread: argon2-cffi releases the GIL, and the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults follow RFC 9106's recommended profile. Hashes record their own
# parameters, so raising these later only means old hashes are upgraded at their next login.
# Tests swap in a cheap hasher (see tests/conftest.py); nothing else should reassign it.
hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches; False on a mismatch or an unreadable hash."""
    return await asyncio.to_thread(_verify, hasher, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the current ones."""
    try:
        return bool(hasher.check_needs_rehash(password_hash))
    except InvalidHashError:
        return True


async def burn_verification_time(password: str) -> None:
    """Spend as long as a real verification, for an email with no usable account.

    Without it, "no such account" answers in microseconds and "wrong password" in 0.1 s, and
    the difference tells an attacker which email addresses have accounts.
    """
    await asyncio.to_thread(_verify, hasher, _dummy_hash(hasher), password)


def _verify(current: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return bool(current.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=4)
def _dummy_hash(current: PasswordHasher) -> str:
    return str(current.hash("not the password of anyone"))
