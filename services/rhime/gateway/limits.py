"""Fixed-window rate limits in Redis, one key per client and window (Redis Cluster friendly),
checked in the same round trip as the sign-out check."""

from __future__ import annotations

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


async def check(
    redis: aioredis.Redis,
    *,
    key: str,
    limit: int,
    window: int,
    signed_out_key: str | None,
) -> Verdict:
    now = time.time()
    slot = int(now // window)
    counter = f"{key}:{slot}"
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, window + 1, nx=True)
            if signed_out_key:
                pipe.get(signed_out_key)
            results = await pipe.execute()
    except Exception:
        # Redis trouble must not take the site down: let the request through.
        log.warning("rate limit check failed; allowing", exc_info=True)
        return Verdict(True, 0, 0)
    count = int(results[0])
    signed_out = int(results[2] or 0) if signed_out_key else 0
    retry_after = max(1, int((slot + 1) * window - now) + 1)
    return Verdict(count <= limit, retry_after, signed_out)
