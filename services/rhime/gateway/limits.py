"""Fixed-window rate limits in Redis, one key per client and window (Redis Cluster friendly),
checked in the same round trip as the sign-out check.

Redis trouble must not take the site down, so the check has a short deadline (redis-py's own
retries would otherwise hold every request for seconds) and its verdict then says `degraded`:
the caller lets reads through and refuses writes, which a revoked token must not make."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import redis.asyncio as aioredis

log = logging.getLogger("rhime.gateway")


@dataclasses.dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int
    signed_out_ms: int  # the user's last sign-out (ms), 0 if none
    degraded: bool = False  # Redis did not answer: neither limit nor sign-out is known
    spotify_changed_ms: int = 0  # the user's last Spotify connect or disconnect (ms), 0 if none


def counters(key: str, *, window: int) -> list[str]:
    """The counters of `key` that may still exist: this window's and the last one's (each
    lives one window and a second)."""
    slot = int(time.time() // window)
    return [f"{key}:{slot - 1}", f"{key}:{slot}"]


async def check(
    redis: aioredis.Redis,
    *,
    key: str,
    limit: int,
    window: int,
    signed_out_key: str | None,
    timeout: float,
    spotify_changed_key: str | None = None,
) -> Verdict:
    now = time.time()
    slot = int(now // window)
    counter = f"{key}:{slot}"
    try:
        async with asyncio.timeout(timeout), redis.pipeline(transaction=False) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, window + 1, nx=True)
            if signed_out_key:
                pipe.get(signed_out_key)
            if spotify_changed_key:
                pipe.get(spotify_changed_key)
            results = await pipe.execute()
    except Exception:
        log.warning("rate limit check failed; degraded", exc_info=True)
        return Verdict(True, 0, 0, degraded=True)
    count = int(results[0])
    extra = iter(results[2:])
    signed_out = int(next(extra) or 0) if signed_out_key else 0
    changed = int(next(extra) or 0) if spotify_changed_key else 0
    retry_after = max(1, int((slot + 1) * window - now) + 1)
    return Verdict(count <= limit, retry_after, signed_out, spotify_changed_ms=changed)
