"""Password hashing with argon2id, kept off the event loop.

A hash takes about 0.1 s of CPU; running it in a thread keeps other requests moving, and a
small dedicated executor keeps a burst of logins from taking every thread of the default one.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's defaults (t=3, m=64 MiB, p=4)
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


# Verified against when the username does not exist, so that timing does not reveal which
# usernames exist.
@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("emall: no such user")


def hash_password_sync(password: str) -> str:
    return _hasher.hash(password)


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_executor, _hasher.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, _verify, stored, password)
