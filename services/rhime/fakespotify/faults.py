"""Injected faults: the next matching request fails (or is slow) as Spotify's can."""

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import Request

from rhime.fakespotify.errors import SpotifyError
from rhime.fakespotify.state import FakeState

MESSAGES = {
    429: "API rate limit exceeded",
    500: "Server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


def injector(state: FakeState) -> Callable[[Request], Awaitable[None]]:
    """A dependency that answers with the next injected fault whose prefix matches the path
    (Web API paths by default; `/api/token` makes the accounts service slow or failing)."""

    async def faults(request: Request) -> None:
        if request.url.path.startswith("/v1/"):
            state.v1_requests += 1
        for fault in state.faults:
            if fault.remaining > 0 and request.url.path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining == 0:
                    state.faults.remove(fault)
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                message = MESSAGES.get(fault.status, "Injected fault")
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                raise SpotifyError(fault.status, message, headers)

    return faults
