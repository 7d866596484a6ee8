"""Password hashing with argon2id (argon2-cffi). Hashing is deliberately slow and takes
`memory_kib` each, so it runs in worker threads behind a semaphore of `concurrency` slots, and
at most `queue_limit` callers wait for a slot: past that, `Busy` at once, so that a flood of
sign-ins neither exhausts memory nor makes everyone wait behind it.

A hash records its own parameters, so hashes made with other settings still verify (at their
own cost) and `needs_rehash` says when to upgrade them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Busy(Exception):
    """Every hashing slot is taken and the queue is full."""


@dataclasses.dataclass
class Hasher:
    time_cost: int = 1
    memory_kib: int = 47104
    parallelism: int = 1
    concurrency: int = 2
    queue_limit: int = 16

    def __post_init__(self) -> None:
        self._hasher = PasswordHasher(
            time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism
        )
        self._slots = asyncio.Semaphore(self.concurrency)
        self._waiting = 0
        # Verifying against this keeps unknown names as slow as wrong passwords.
        self._dummy: str | None = None

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self._waiting >= self.queue_limit:
            raise Busy
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def hash(self, password: str) -> str:
        async with self._slot():
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        """Whether `password` matches; a missing hash costs the same time and fails."""
        async with self._slot():
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
