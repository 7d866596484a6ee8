"""Follow and unfollow as idempotent operations; reading lists, counts and relationships."""

from __future__ import annotations

import asyncio
import logging

from rhime.graph import blocks, edges, relation
from rhime.kit import errors, lookups, outbox, tombstones
from rhime.kit.kit import Kit

log = logging.getLogger("rhime.graph")


async def _known(kit: Kit, *, user_id: str) -> None:
    """404 unless the person exists. One who signed up a moment ago may not be in this
    copy yet (their `user.created` in flight): the auth service is asked, and its answer
    recorded the way the event would have been."""
    if await edges.exists(kit.database, user_id=user_id):
        return
    name = await lookups.user_name(kit, user_id=user_id)
    if name is None or not await edges.add_user(kit.database, user_id=user_id, user_name=name):
        raise errors.not_found("The user does not exist.")


async def _target(kit: Kit, *, caller: str, target: str) -> None:
    if caller == target:
        raise errors.forbidden("You cannot follow yourself.")
    await _known(kit, user_id=target)


async def set_following(kit: Kit, *, follower: str, followee: str, active: bool) -> bool:
    """Follow (`active`) or unfollow; repeating an operation changes nothing. Returns whether
    the follower now follows the followee. Two people of whom one blocks the other cannot
    follow each other."""
    await _target(kit, caller=follower, target=followee)
    if active and await blocks.either(kit.database, a=follower, b=followee):
        raise errors.forbidden("You cannot follow this person.")
    await _change(kit, follower=follower, followee=followee, active=active)
    # A block made since the check unfollowed before this follow was stored: looking again
    # after the write closes the gap between the two.
    if active and await blocks.either(kit.database, a=follower, b=followee):
        await _change(kit, follower=follower, followee=followee, active=False)
        raise errors.forbidden("You cannot follow this person.")
    return active


async def _change(kit: Kit, *, follower: str, followee: str, active: bool) -> None:
    try:
        version = await edges.transition(
            kit.database, follower=follower, followee=followee, active=active
        )
    except relation.ConcurrentChange:
        raise errors.conflict("The relationship is changing; try again.") from None
    if version is not None:
        key = edges.edge_id(follower, followee)
        await edges.settle(kit.database, key=key)
        try:
            await outbox.flush(kit, collection=edges.EDGES, doc_id=key)
        except Exception:
            # the change is stored with its event; the outbox relay publishes it later
            log.warning("event for %s left to the outbox relay", key, exc_info=True)


async def set_blocking(kit: Kit, *, blocker: str, blocked: str, active: bool) -> bool:
    """Block (`active`) or unblock; repeating an operation changes nothing. A block ends the
    follows between the two both ways (counts settled, `user.unfollowed` published); lifting
    it restores none. Returns whether the blocker now blocks the other."""
    if blocker == blocked:
        raise errors.forbidden("You cannot block yourself.")
    await _known(kit, user_id=blocked)
    try:
        version = await blocks.transition(
            kit.database, blocker=blocker, blocked=blocked, active=active
        )
    except relation.ConcurrentChange:
        raise errors.conflict("The block is changing; try again.") from None
    if active:
        await end_follows(kit, a=blocker, b=blocked)
    if version is not None:
        await outbox.try_flush(
            kit, collection=blocks.BLOCKS, doc_id=blocks.block_id(blocker, blocked)
        )
    return active


async def end_follows(kit: Kit, *, a: str, b: str) -> None:
    """Unfollow both ways while a block stands between the two; repeating it changes
    nothing (also run on `user.blocked`, so a crash after the block was stored and before
    the follows ended loses nothing)."""
    if not await blocks.either(kit.database, a=a, b=b):
        return  # lifted meanwhile: a late event must not end follows made since
    for follower, followee in ((a, b), (b, a)):
        await _change(kit, follower=follower, followee=followee, active=False)


async def blocked_page(
    kit: Kit, *, blocker: str, after: str | None
) -> tuple[list[str], str | None]:
    return await blocks.page(kit.database, blocker=blocker, after=after)


async def relationship(kit: Kit, *, caller: str, target: str) -> tuple[bool, bool, bool]:
    """(caller follows target, target follows caller, caller blocks target)."""
    await _target(kit, caller=caller, target=target)
    return await asyncio.gather(
        edges.follows(kit.database, follower=caller, followee=target),
        edges.follows(kit.database, follower=target, followee=caller),
        blocks.blocks(kit.database, blocker=caller, blocked=target),
    )


async def counts(kit: Kit, *, user_id: str) -> edges.Counts:
    found = await edges.counts(kit.database, user_id=user_id)
    if found is None:
        await _known(kit, user_id=user_id)
        found = await edges.counts(kit.database, user_id=user_id)
    if found is None:
        raise errors.not_found("The user does not exist.")
    return found


async def page(
    kit: Kit, *, user_id: str, direction: edges.Direction, after: str | None
) -> tuple[list[str], str | None]:
    await _known(kit, user_id=user_id)
    return await edges.page(kit.database, user_id=user_id, direction=direction, after=after)


async def settle_forever(kit: Kit) -> None:
    """Count changes a crash left unsettled (normally none)."""
    while True:
        try:
            await edges.settle_stale(kit.database)
        except Exception:
            log.warning("settling stale edges failed", exc_info=True)
        await asyncio.sleep(kit.settings.outbox_relay_seconds * 5)


async def forget_all(kit: Kit, *, user_id: str, batch: int = 100) -> int:
    """The person deleted their account: every edge from or to them is unfollowed the usual
    way (`user.unfollowed`, counts settled), then removed with their node. Safe to repeat:
    each step finds what a crash left and finishes it. Returns the edges removed."""
    db = kit.database
    await tombstones.lay(db[edges.USERS], user_id=user_id)
    removed = 0
    for field in ("follower", "followee"):
        while True:
            query = {field: user_id, outbox.PURGE: {"$ne": True}}
            keys = [
                doc["_id"] async for doc in db[edges.EDGES].find(query, {"_id": 1}).limit(batch)
            ]
            if not keys:
                break
            for key in keys:
                await _forget_edge(kit, key=key)
                removed += 1
    await blocks.forget(db, user_id=user_id)
    await db[edges.USERS].delete_one({"_id": user_id})
    return removed


async def _forget_edge(kit: Kit, *, key: str) -> None:
    db = kit.database
    doc = await db[edges.EDGES].find_one({"_id": key}, {"follower": 1, "followee": 1})
    if doc is None:
        return
    follower, followee = doc["follower"], doc["followee"]
    await edges.transition(db, follower=follower, followee=followee, active=False)
    await edges.settle(db, key=key)
    doc = await db[edges.EDGES].find_one({"_id": key}, {"version": 1})
    if doc is None:
        return
    # Settled: the ids that kept each count change from applying twice name the pair, and
    # are of no more use.
    applied = [f"edge:{key}:{v}" for v in range(1, int(doc["version"]) + 1)]
    for node in (follower, followee):
        await db[edges.USERS].update_one({"_id": node}, {"$pullAll": {"_applied": applied}})
    await db[edges.EDGES].update_one({"_id": key}, {"$set": {outbox.PURGE: True}})
    await outbox.flush(kit, collection=edges.EDGES, doc_id=key)


async def export(kit: Kit, *, user_id: str) -> dict[str, list[str]]:
    """Whom the user follows and who follows them, for their data export."""
    found: dict[str, list[str]] = {}
    direction: edges.Direction
    for direction in ("followers", "following"):
        found[direction] = [
            uid
            async for batch in edges.stream(
                kit.database, user_id=user_id, direction=direction, batch_size=500
            )
            for uid in batch
        ]
    found["blocking"] = await blocks.export(kit.database, blocker=user_id)
    return found
