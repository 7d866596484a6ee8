"""Is Spotify connected? Asked when a token still says no, so that connecting Spotify never
forces a new sign-in: the spotify component answers, Redis remembers (yes for a day, no for
a moment)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from rhime.gateway.settings import Settings
from rhime.kit import identity, logs
from rhime.kit.app import Kit

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
    async with kit.http.get(
        f"{base_url}/internal/connected/{user_id}",
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=2),
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        answer = await response.json()
    return bool(isinstance(answer, dict) and answer.get("connected"))


async def check(kit: Kit, *, settings: Settings, base_url: str, user_id: str) -> bool:
    key = kit.key("connected", user_id)
    try:
        async with asyncio.timeout(settings.redis_timeout_seconds):
            cached = await kit.redis.get(key)
    except Exception:
        cached = None
    if cached is not None:
        return bool(cached == "1")
    try:
        connected = await _ask(kit, base_url=base_url, user_id=user_id)
    except Exception as exc:
        # unreachable or failing: not connected for now, and not a 500
        log.warning("spotify could not say whether %s is connected (%r)", user_id, exc)
        connected = False
    ttl = settings.connected_ttl_seconds if connected else settings.not_connected_ttl_seconds
    try:
        async with asyncio.timeout(settings.redis_timeout_seconds):
            await kit.redis.set(key, "1" if connected else "0", ex=ttl)
    except Exception:
        log.warning("could not cache the connected state of %s", user_id, exc_info=True)
    return connected
