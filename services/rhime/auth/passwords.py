"""Password hashing with argon2id (argon2-cffi). Hashing is deliberately slow, so it runs in
a worker thread, and a semaphore bounds how many run at once (each takes `memory_kib`)."""

from __future__ import annotations

import asyncio
import dataclasses

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclasses.dataclass
class Hasher:
    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4
    concurrency: int = 4

    def __post_init__(self) -> None:
        self._hasher = PasswordHasher(
            time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism
        )
        self._slots = asyncio.Semaphore(self.concurrency)
        # Verifying against this keeps unknown names as slow as wrong passwords.
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        """Whether `password` matches; a missing hash costs the same time and fails."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, hashed, password)

    def _verify(self, hashed: str | None, password: str) -> bool:
        if hashed is None and self._dummy is None:
            self._dummy = self._hasher.hash("not-a-real-password-1!")
        try:
            return self._hasher.verify(hashed or self._dummy or "", password) and bool(hashed)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hashed: str) -> bool:
        return self._hasher.check_needs_rehash(hashed)
