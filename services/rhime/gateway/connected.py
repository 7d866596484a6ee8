"""Is Spotify connected? Asked when a token still says no (or said yes before the connection
last changed), so that connecting Spotify never forces a new sign-in: the spotify component
answers, Redis remembers (yes for a day, no for a moment) with the time it asked, and an
answer from before the user's last connect or disconnect is asked again."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from rhime.gateway.settings import Settings
from rhime.kit import identity, logs, traces
from rhime.kit.kit import Kit

log = logging.getLogger("rhime.gateway")


async def _ask(kit: Kit, *, base_url: str, user_id: str) -> bool:
    settings = kit.settings
    caller = identity.Identity(user_id="", service=settings.component or "gateway")
    headers = {
        identity.HEADER: identity.encode(
            caller, secret=settings.internal_secret.get_secret_value()
        ),
        logs.HEADER: logs.request_id.get() or logs.new_request_id(),
    }
    with traces.outgoing(kit.tracing, "GET spotify", headers):
        async with kit.http.get(
            f"{base_url}/internal/connected/{user_id}",
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=2),
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            answer = await response.json()
    return bool(isinstance(answer, dict) and answer.get("connected"))


def _parse(cached: bytes | str | None) -> tuple[bool, int] | None:
    """(connected, when it was asked in ms) from "1:<ms>" ("1" alone: long ago)."""
    if cached is None:
        return None
    text = cached.decode() if isinstance(cached, bytes) else cached
    answer, _, when = text.partition(":")
    return answer == "1", int(when) if when.isdigit() else 0


async def remember(kit: Kit, *, settings: Settings, user_id: str, connected: bool) -> None:
    """Cache an answer as of now (the spotify component just changed the connection)."""
    ttl = settings.connected_ttl_seconds if connected else settings.not_connected_ttl_seconds
    value = f"{'1' if connected else '0'}:{int(time.time() * 1000)}"
    try:
        async with asyncio.timeout(settings.redis_timeout_seconds):
            await kit.redis.set(kit.key("connected", user_id), value, ex=ttl)
    except Exception:
        log.warning("could not cache the connected state of %s", user_id, exc_info=True)


async def check(
    kit: Kit, *, settings: Settings, base_url: str, user_id: str, since_ms: int = 0
) -> bool:
    """Connected? `since_ms`: the user's last connect or disconnect; older answers are stale."""
    key = kit.key("connected", user_id)
    try:
        async with asyncio.timeout(settings.redis_timeout_seconds):
            cached = _parse(await kit.redis.get(key))
    except Exception:
        cached = None
    if cached is not None and cached[1] >= since_ms:
        return cached[0]
    # the time before asking: an answer that raced a disconnect counts as older than it
    asked_ms = int(time.time() * 1000)
    try:
        connected = await _ask(kit, base_url=base_url, user_id=user_id)
    except Exception as exc:
        # unreachable or failing: not connected for now, and not a 500
        log.warning("spotify could not say whether %s is connected (%r)", user_id, exc)
        connected = False
    ttl = settings.connected_ttl_seconds if connected else settings.not_connected_ttl_seconds
    try:
        async with asyncio.timeout(settings.redis_timeout_seconds):
            await kit.redis.set(key, f"{'1' if connected else '0'}:{asked_ms}", ex=ttl)
    except Exception:
        log.warning("could not cache the connected state of %s", user_id, exc_info=True)
    return connected
