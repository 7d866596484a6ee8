"""Home timelines in Redis: one sorted set per person, member = post id, score = the post's
time in ms (from its ObjectId, so score order and id order agree; equal scores order by id).

Keys carry the person in a hash tag (`{ns}:feed:{<user>}:…`), so a script touching one
person's keys stays in one cluster slot:
- `…:timeline` — capped at `cap` entries; holds a sentinel (score -1) from the moment it is
  built, so an empty timeline is still "built", and its absence after trimming tells that
  older posts exist beyond the cache;
- `…:active` — set on each read with a TTL of `inactive_days`: fan-out skips people without
  it and drops their timeline, which is rebuilt when they come back;
- `…:bigs` — the big accounts this person follows, merged in at read time.

The timeline and bigs expire with `active` (each read renews all three): a person who stops
reading leaves nothing behind in Redis, and their next read rebuilds both. Every write that
may create one of them gives it that TTL, so no key outlives its owner's absence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import bson

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

SENTINEL = "~built"

_ADD = """
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('DEL', KEYS[1]) return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
return 1
"""


def score(post_id: str) -> int:
    return int(bson.ObjectId(post_id).generation_time.timestamp()) * 1000


def keys(kit: Kit, user_id: str) -> tuple[str, str, str]:
    tag = "{" + user_id + "}"
    return (
        kit.key("feed", tag, "timeline"),
        kit.key("feed", tag, "active"),
        kit.key("feed", tag, "bigs"),
    )


def fan_out(pipe: Any, kit: Kit, *, user_ids: Sequence[str], post_id: str, cap: int) -> None:
    """Queue the post into each active person's built timeline (one script per person)."""
    s = score(post_id)
    for user_id in user_ids:
        timeline, active, _ = keys(kit, user_id)
        pipe.eval(_ADD, 2, timeline, active, s, post_id, cap)


async def build(kit: Kit, *, user_id: str, post_ids: Sequence[str], cap: int, ttl: int) -> None:
    """Fill a timeline begun by `start_build` (whatever fan-out added meanwhile stays)."""
    timeline, _, _ = keys(kit, user_id)
    pipe = kit.redis.pipeline(transaction=True)
    pipe.zadd(timeline, {SENTINEL: -1, **{p: score(p) for p in post_ids}})
    pipe.zremrangebyrank(timeline, 0, -(cap + 1))
    pipe.expire(timeline, ttl)
    await pipe.execute()


async def start_build(kit: Kit, *, user_id: str, ttl: int) -> None:
    """Create the timeline with only its sentinel before reading the posts for it, so that
    fan-outs that happen meanwhile land in it instead of being skipped."""
    timeline, _, _ = keys(kit, user_id)
    pipe = kit.redis.pipeline(transaction=True)
    pipe.zadd(timeline, {SENTINEL: -1})
    pipe.expire(timeline, ttl)
    await pipe.execute()


async def add(kit: Kit, *, user_id: str, post_ids: Sequence[str], cap: int, ttl: int) -> None:
    if not post_ids:
        return
    timeline, _, _ = keys(kit, user_id)
    pipe = kit.redis.pipeline(transaction=False)
    pipe.zadd(timeline, {p: score(p) for p in post_ids}, xx=False)
    pipe.zremrangebyrank(timeline, 0, -(cap + 1))
    pipe.expire(timeline, ttl, nx=True)
    await pipe.execute()


async def touch(kit: Kit, *, user_id: str, inactive_seconds: int) -> bool:
    """Mark the person active and renew their keys; returns whether their timeline is built."""
    timeline, active, bigs_key = keys(kit, user_id)
    pipe = kit.redis.pipeline(transaction=False)
    pipe.set(active, "1", ex=inactive_seconds)
    pipe.exists(timeline)
    pipe.expire(timeline, inactive_seconds)
    pipe.expire(bigs_key, inactive_seconds)
    _, built, _, _ = await pipe.execute()
    return bool(built)


async def page(kit: Kit, *, user_id: str, before: str | None, limit: int) -> tuple[list[str], bool]:
    """Up to `limit` post ids below `before`, newest first, and whether the cache holds
    everything older too (its sentinel survived trimming)."""
    timeline, _, _ = keys(kit, user_id)
    top: Any = "+inf" if before is None else score(before)
    pipe = kit.redis.pipeline(transaction=False)
    pipe.zcount(timeline, top, top)
    pipe.zscore(timeline, SENTINEL)
    ties, sentinel = await pipe.execute()
    # Same-second posts at the anchor's score may sort above it; fetch past them and filter.
    extra = int(ties) if before is not None else 0
    raw: Any = await kit.redis.zrevrangebyscore(timeline, top, 0, start=0, num=limit + extra)
    ids = [p for p in raw if before is None or p < before][:limit]
    return ids, sentinel is not None


async def remove(kit: Kit, *, user_id: str, post_ids: Sequence[str]) -> None:
    if post_ids:
        await kit.redis.zrem(keys(kit, user_id)[0], *post_ids)


async def drop(kit: Kit, *, user_id: str) -> None:
    await kit.redis.delete(keys(kit, user_id)[0])


async def bigs(kit: Kit, *, user_id: str) -> list[str]:
    found: Any = await kit.redis.smembers(keys(kit, user_id)[2])
    return sorted(found)


async def set_bigs(kit: Kit, *, user_id: str, authors: Sequence[str], ttl: int) -> None:
    key = keys(kit, user_id)[2]
    pipe = kit.redis.pipeline(transaction=True)
    pipe.delete(key)
    if authors:
        pipe.sadd(key, *authors)
        pipe.expire(key, ttl)
    await pipe.execute()


def add_big(pipe: Any, kit: Kit, *, user_id: str, author: str, ttl: int) -> None:
    """Queue `author` into the person's bigs; a set this creates expires like the rest."""
    key = keys(kit, user_id)[2]
    pipe.sadd(key, author)
    pipe.expire(key, ttl, nx=True)


async def follow_big(kit: Kit, *, user_id: str, author: str, ttl: int) -> None:
    pipe = kit.redis.pipeline(transaction=False)
    add_big(pipe, kit, user_id=user_id, author=author, ttl=ttl)
    await pipe.execute()


async def unfollow_big(kit: Kit, *, user_id: str, author: str) -> None:
    await kit.redis.srem(keys(kit, user_id)[2], author)
