"""spotipy's token cache for one person, backed by the encrypted token store.

spotipy reads and writes its cache from a thread of the Spotify pool, while the store is
async and bound to the event loop that made its client: each read or write runs on that loop
and the thread waits for it. What a write means (a new connection, a fenced refresh) is the
store's business (`rhime.music.spotify.tokens`), passed in as `write`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from spotipy.cache_handler import CacheHandler

from rhime.music.spotify import api

T = TypeVar("T")
TokenInfo = dict[str, Any]


class StoredToken(CacheHandler):  # type: ignore[misc]
    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        read: Callable[[], Awaitable[TokenInfo | None]],
        write: Callable[[TokenInfo], Awaitable[None]],
        wait_seconds: float,
    ) -> None:
        self._loop = loop
        self._read = read
        self._write = write
        self._wait = wait_seconds

    def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=self._wait)
        except TimeoutError:
            future.cancel()
            # not a transport error: the grant itself may have worked, so it is not retried
            raise api.SpotifyError(504, "the token store did not answer") from None

    async def _get(self) -> TokenInfo | None:
        return await self._read()

    async def _save(self, token_info: TokenInfo) -> None:
        await self._write(token_info)

    def get_cached_token(self) -> TokenInfo | None:
        return self._on_loop(self._get())

    def save_token_to_cache(self, token_info: TokenInfo) -> None:
        self._on_loop(self._save(dict(token_info)))
