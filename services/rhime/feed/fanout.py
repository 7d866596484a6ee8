"""Keeping timelines current from events.

`post.created`: the post joins the author's index, then — unless the author is a big account —
its id is pushed into every active follower's built timeline. Followers stream from
user-graph-view in batches of `fanout_batch`; each batch is one Redis pipeline of one small
script per follower (ZADD + trim), so 10K followers are 20 round trips. Followers are read up
to `big_threshold` before anything is written: past it the author is marked big and nothing
is fanned out (their posts are merged into readers' pages instead), so a celebrity's post
costs one bounded read, not a million writes. For accounts that large and still fanned out
(a higher threshold), the plan is to split the work into bounded messages — one per follower
range (`after` cursor) on a fan-out subject — so many replicas share it and a redelivery
repeats one range only; the handler here already works range by range.

`post.deleted`: tombstone in the index, removed from the author's followers' timelines (and
pages drop any post the post service no longer knows, so a late removal is not visible).

`user.followed`: the followee's recent posts join the follower's timeline; a big followee is
added to the follower's merge set. `user.unfollowed`: the timeline is dropped and rebuilt on
the next read (exact, and cheaper than finding the followee's entries).

Every handler is idempotent: ZADD/ZREM/SADD of the same members, upserts with tombstones.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from rhime import blocking, events
from rhime.feed import authors, graph, pages, timelines

if TYPE_CHECKING:
    from rhime.kit.kit import Kit


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    cap: int
    big_threshold: int
    batch: int
    inactive_seconds: int  # the TTL of timelines and bigs this creates


async def post_created(kit: Kit, event: events.PostCreated, *, limits: Limits) -> int:
    """Returns how many timelines the post was offered to."""
    if not await authors.record(kit, post_id=event.post_id, user_id=event.user_id):
        return 0
    pipe = kit.redis.pipeline(transaction=False)
    timelines.fan_out(pipe, kit, user_ids=[event.user_id], post_id=event.post_id, cap=limits.cap)
    await pipe.execute()
    held: list[str] = []
    stream = graph.followers(kit, user_id=event.user_id, batch_size=limits.batch)
    try:
        async for batch in stream:
            held.extend(batch)
            if len(held) > limits.big_threshold:
                if await authors.set_big(kit, user_id=event.user_id, big=True):
                    await _became_big(kit, author=event.user_id, limits=limits)
                return 1
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    if await authors.set_big(kit, user_id=event.user_id, big=False):
        await _became_small(kit, author=event.user_id, limits=limits)
    for start in range(0, len(held), limits.batch):
        pipe = kit.redis.pipeline(transaction=False)
        timelines.fan_out(
            pipe,
            kit,
            user_ids=held[start : start + limits.batch],
            post_id=event.post_id,
            cap=limits.cap,
        )
        await pipe.execute()
    return 1 + len(held)


async def _became_big(kit: Kit, *, author: str, limits: Limits) -> None:
    """Once, when an author crosses the threshold: followers merge their posts from now on."""
    async for batch in graph.followers(kit, user_id=author, batch_size=limits.batch):
        pipe = kit.redis.pipeline(transaction=False)
        for user_id in batch:
            timelines.add_big(
                pipe, kit, user_id=user_id, author=author, ttl=limits.inactive_seconds
            )
        await pipe.execute()


async def _became_small(kit: Kit, *, author: str, limits: Limits) -> None:
    async for batch in graph.followers(kit, user_id=author, batch_size=limits.batch):
        pipe = kit.redis.pipeline(transaction=False)
        for user_id in batch:
            pipe.srem(timelines.keys(kit, user_id)[2], author)
        await pipe.execute()


async def post_deleted(kit: Kit, event: events.PostDeleted, *, limits: Limits) -> None:
    await authors.forget(kit, post_id=event.post_id)
    await timelines.remove(kit, user_id=event.user_id, post_ids=[event.post_id])
    async for batch in graph.followers(kit, user_id=event.user_id, batch_size=limits.batch):
        pipe = kit.redis.pipeline(transaction=False)
        for user_id in batch:
            pipe.zrem(timelines.keys(kit, user_id)[0], event.post_id)
        await pipe.execute()


async def user_followed(kit: Kit, event: events.UserFollowed, *, limits: Limits) -> None:
    big = await authors.big_among(kit, user_ids=[event.followee_id])
    if big:
        await timelines.follow_big(
            kit,
            user_id=event.follower_id,
            author=event.followee_id,
            ttl=limits.inactive_seconds,
        )
        return
    if not await kit.redis.exists(timelines.keys(kit, event.follower_id)[0]):
        return  # not built: the rebuild on the next read includes the followee
    recent = await authors.recent(kit, user_ids=[event.followee_id], before=None, limit=limits.cap)
    await timelines.add(
        kit, user_id=event.follower_id, post_ids=recent, cap=limits.cap, ttl=limits.inactive_seconds
    )


async def user_unfollowed(kit: Kit, event: events.UserUnfollowed) -> None:
    await timelines.unfollow_big(kit, user_id=event.follower_id, author=event.followee_id)
    await timelines.drop(kit, user_id=event.follower_id)


async def block_changed(kit: Kit, event: blocking.Change) -> None:
    """Keep the copy of blocks that profile pages are checked against. A block drops both
    timelines too: rebuilt on the next read from the follows as the graph now has them (the
    block ended them both ways), so neither reads the other's posts even when their
    `user.unfollowed` is late."""
    await blocking.apply(kit.database, event)
    if isinstance(event, events.UserBlocked):
        for user_id in (event.blocker_id, event.blocked_id):
            await timelines.drop(kit, user_id=user_id)


async def user_deleted(kit: Kit, event: events.UserDeleted) -> None:
    """Their timeline keys and author card go; their posts leave others' timelines with
    `post.deleted`, and their follows with `user.unfollowed` (which drops the follower's
    timeline, rebuilt without them on the next read)."""
    timeline, active, bigs = timelines.keys(kit, event.user_id)
    await kit.redis.delete(timeline, active, bigs, pages.card_key(kit, event.user_id))
    await authors.forget_author(kit, user_id=event.user_id)
    await blocking.forget(kit.database, user_id=event.user_id)
