"""Reading timelines: pages of fully renderable posts.

A home page comes from the person's Redis timeline (rebuilt from the feed's post index when
cold or dropped: fan-out on read, then cached), merged with the recent posts of the big
accounts they follow, and continued from the index past the cache's oldest entry. Then the
page is hydrated with four batch lookups, three of them concurrent: posts (cached in Redis,
they never change), author cards (cached briefly), like counts with "liked by me", and comment
counts. Anchors are post ids compared as ObjectId hex strings, never numbers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from rhime import blocking
from rhime.feed import authors, graph, timelines
from rhime.kit import calls, errors

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

log = logging.getLogger("rhime.feed.pages")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    cap: int
    inactive_seconds: int
    batch: int
    post_cache_seconds: int
    card_cache_seconds: int


def _newest(lists: Sequence[Sequence[str]], limit: int) -> list[str]:
    """The `limit` greatest distinct ids of sorted-descending lists, descending."""
    merged: list[str] = []
    for post_id in heapq.merge(*lists, reverse=True):
        if not merged or merged[-1] != post_id:
            merged.append(post_id)
            if len(merged) == limit:
                break
    return merged


async def from_followees(
    kit: Kit, *, user_id: str, before: str | None, limit: int, batch: int
) -> tuple[list[str], list[str]]:
    """Fan-out on read: the newest posts of the person and everyone they follow, and which of
    those they follow are big accounts."""
    found = [await authors.recent(kit, user_ids=[user_id], before=before, limit=limit)]
    bigs: list[str] = []
    async for followees in graph.followees(kit, user_id=user_id, batch_size=batch):
        found.append(await authors.recent(kit, user_ids=followees, before=before, limit=limit))
        found = [_newest(found, limit)]
        bigs += await authors.big_among(kit, user_ids=followees)
    return _newest(found, limit), bigs


async def rebuild(kit: Kit, *, user_id: str, limits: Limits) -> None:
    ttl = limits.inactive_seconds
    await timelines.start_build(kit, user_id=user_id, ttl=ttl)
    ids, bigs = await from_followees(
        kit, user_id=user_id, before=None, limit=limits.cap, batch=limits.batch
    )
    await timelines.build(kit, user_id=user_id, post_ids=ids, cap=limits.cap, ttl=ttl)
    await timelines.set_bigs(kit, user_id=user_id, authors=bigs, ttl=ttl)


async def home(
    kit: Kit, *, user_id: str, before: str | None, limit: int, limits: Limits
) -> dict[str, Any]:
    built = await timelines.touch(kit, user_id=user_id, inactive_seconds=limits.inactive_seconds)
    _looked_up(kit, "timeline", hits=int(built), misses=int(not built))
    if not built:
        await rebuild(kit, user_id=user_id, limits=limits)
    ids, complete = await timelines.page(kit, user_id=user_id, before=before, limit=limit)
    lists = [ids]
    if len(ids) < limit and not complete:
        # Older than the cache holds: read it from the index (not cached).
        older, _ = await from_followees(
            kit,
            user_id=user_id,
            before=ids[-1] if ids else before,
            limit=limit - len(ids),
            batch=limits.batch,
        )
        lists.append(older)
    bigs = await timelines.bigs(kit, user_id=user_id)
    if bigs:
        lists.append(await authors.recent(kit, user_ids=bigs, before=before, limit=limit))
    page = _newest(lists, limit)
    posts, gone = await hydrate(kit, viewer=user_id, post_ids=page, limits=limits)
    if gone:
        await timelines.remove(kit, user_id=user_id, post_ids=gone)
    return {"posts": posts, "next": page[-1] if len(page) == limit else None}


async def profile(
    kit: Kit, *, viewer: str, user_id: str, before: str | None, limit: int, limits: Limits
) -> dict[str, Any]:
    if await blocking.between(kit.database, a=viewer, b=user_id):
        return {"posts": [], "next": None}
    page = await authors.recent(kit, user_ids=[user_id], before=before, limit=limit)
    posts, _ = await hydrate(kit, viewer=viewer, post_ids=page, limits=limits)
    return {"posts": posts, "next": page[-1] if len(page) == limit else None}


async def hydrate(
    kit: Kit, *, viewer: str, post_ids: Sequence[str], limits: Limits
) -> tuple[list[dict[str, Any]], list[str]]:
    """Renderable posts in the given order, and the ids the post service no longer has."""
    if not post_ids:
        return [], []
    posts = await _posts(kit, post_ids, limits)
    gone = [p for p in post_ids if p not in posts]
    live = [p for p in post_ids if p in posts]
    if not live:
        return [], gone
    cards, summary, comments = await asyncio.gather(
        _cards(kit, sorted({posts[p]["userId"] for p in live}), limits),
        _optional(
            kit,
            "like",
            "/internal/likes/summary",
            {"ids": live, "userId": viewer},
            key="items",
        ),
        _optional(kit, "comment", "/internal/comments/counts", {"ids": live}, key="counts"),
    )
    items = []
    for post_id in live:
        post = posts[post_id]
        likes = summary.get(post_id) or {}
        author = post["userId"]
        items.append(
            {
                "postId": post_id,
                "createdAt": post["createdAt"],
                "caption": post["caption"],
                "track": post["track"],
                "author": cards.get(author)
                or {"userId": author, "userName": "", "displayName": "", "profileImage": ""},
                "likeCount": int(likes.get("count", 0)),
                "commentCount": int(comments.get(post_id, 0)),
                "likedByMe": bool(likes.get("liked", False)),
            }
        )
    return items, gone


def _looked_up(kit: Kit, cache: str, *, hits: int, misses: int) -> None:
    """`rhime_cache_lookups_total`: the hit ratio of each cache, per key looked up."""
    if hits:
        kit.metrics.cache.labels(cache, "hit").inc(hits)
    if misses:
        kit.metrics.cache.labels(cache, "miss").inc(misses)


def post_key(kit: Kit, post_id: str) -> str:
    return kit.key("feed", "post", post_id)


async def _posts(kit: Kit, post_ids: Sequence[str], limits: Limits) -> dict[str, dict[str, Any]]:
    cached: list[Any] = await kit.redis.mget([post_key(kit, p) for p in post_ids])
    found = {p: orjson.loads(raw) for p, raw in zip(post_ids, cached, strict=True) if raw}
    missing = [p for p in post_ids if p not in found]
    _looked_up(kit, "post", hits=len(found), misses=len(missing))
    if missing:
        body = await calls.call(kit, "post", "POST", "/internal/posts/batch", json={"ids": missing})
        fetched: dict[str, dict[str, Any]] = body["posts"]
        if fetched:
            pipe = kit.redis.pipeline(transaction=False)
            for post_id, post in fetched.items():
                pipe.set(post_key(kit, post_id), orjson.dumps(post), ex=limits.post_cache_seconds)
            await pipe.execute()
        found.update(fetched)
    return found


def card_key(kit: Kit, user_id: str) -> str:
    return kit.key("feed", "card", user_id)


async def _cards(kit: Kit, user_ids: Sequence[str], limits: Limits) -> dict[str, dict[str, Any]]:
    keys = [card_key(kit, u) for u in user_ids]
    cached: list[Any] = await kit.redis.mget(keys)
    found = {u: orjson.loads(raw) for u, raw in zip(user_ids, cached, strict=True) if raw}
    missing = [u for u in user_ids if u not in found]
    _looked_up(kit, "card", hits=len(found), misses=len(missing))
    if missing:
        fetched = await _optional(
            kit, "user", "/internal/users/cards", {"ids": missing}, key="cards"
        )
        if fetched:
            pipe = kit.redis.pipeline(transaction=False)
            for user_id, card in fetched.items():
                pipe.set(
                    card_key(kit, user_id),
                    orjson.dumps(card),
                    ex=limits.card_cache_seconds,
                )
            await pipe.execute()
        found.update(fetched)
    return found


async def _optional(
    kit: Kit, service: str, path: str, body: dict[str, Any], *, key: str
) -> dict[str, Any]:
    """A lookup the page can render without (zeros, plain author): degrade, don't fail."""
    try:
        answer = await calls.call(kit, service, "POST", path, json=body, timeout=2.0)
    except errors.ApiError as exc:
        log.warning("%s lookup failed (%d); rendering without it", service, exc.status)
        return {}
    found: dict[str, Any] = answer.get(key) or {}
    return found
