"""Liking and unliking, and "is it liked by me", read-your-writes.

Each action gets a per-(item, person) `seq` that only grows: a Redis counter with a day's TTL
whose next value is at least the current time in microseconds, so even after the counter
expires or is lost a new action orders after every older one. The action is published as
`like.toggled` (JetStream's ack is the commit point: if publishing fails, nothing happened and
the caller gets 503), then written to the person's overlay (`{ns}:likes:mine:{user}` hash,
field = item, value = `seq:liked`, short TTL) so the next read sees it before the like-updater
has persisted it. Reads take whichever of overlay and persisted state has the higher seq.

Every action is published, even one that looks like a repeat: what this service reads may be
behind (a publish whose ack was lost but that JetStream kept, an overlay expired while the
like-updater lags), and skipping would let that older action win over the one the person was
just told succeeded. Downstream a repeat is a no-op: state, counts and notifications change
only on a real transition.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rhime import blocking, events
from rhime.kit import errors
from rhime.likes import items, state

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

log = logging.getLogger("rhime.likes.mine")

_NEXT_SEQ = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local nxt = math.max(cur + 1, tonumber(ARGV[1]))
local text = string.format('%.0f', nxt)
redis.call('SET', KEYS[1], text, 'EX', 86400)
return text
"""


def overlay_key(kit: Kit, user_id: str) -> str:
    return kit.key("likes", "mine", user_id)


async def liked_many(kit: Kit, *, user_id: str, item_ids: Sequence[str]) -> dict[str, bool]:
    if not item_ids:
        return {}
    raw: list[Any] = await kit.redis.hmget(overlay_key(kit, user_id), list(item_ids))
    persisted = await state.read(kit, user_id=user_id, item_ids=item_ids)
    result = {}
    for item_id, value in zip(item_ids, raw, strict=True):
        seq, liked = persisted.get(item_id, (-1, False))
        if value:
            overlay_seq, _, overlay_liked = value.partition(":")
            if int(overlay_seq) > seq:
                liked = overlay_liked == "1"
        result[item_id] = liked
    return result


async def set_liked(
    kit: Kit, *, user_id: str, item_id: str, liked: bool, overlay_seconds: int
) -> bool:
    item = await items.find(kit, item_id=item_id)
    if item is None:
        raise errors.not_found("No such item exists.")
    # an unlike is always taken: whoever is blocked may still take back a like
    if liked and item.owner and await blocking.between(kit.database, a=user_id, b=item.owner):
        raise errors.forbidden("You cannot like this person's posts.")
    item_type = item.type
    seq = int(
        await kit.redis.eval(
            _NEXT_SEQ, 1, kit.key("likes", "seq", item_id, user_id), str(time.time_ns() // 1000)
        )
    )
    event = events.LikeToggled(
        id=f"like.toggled:{uuid.uuid4().hex}",
        item_id=item_id,
        item_type=item_type,
        user_id=user_id,
        liked=liked,
        seq=seq,
    )
    try:
        await kit.require_bus().publish(event)
    except errors.ApiError:
        raise
    except Exception:
        log.warning("could not publish a like", exc_info=True)
        raise errors.unavailable("The like could not be recorded; try again.") from None
    key = overlay_key(kit, user_id)
    try:
        pipe = kit.redis.pipeline(transaction=False)
        pipe.hset(key, item_id, f"{seq}:{1 if liked else 0}")
        pipe.expire(key, overlay_seconds)
        await pipe.execute()
    except Exception:
        # The action is committed; only the instant read-back may lag the like-updater.
        log.warning("could not write the like overlay", exc_info=True)
    return liked


async def forget_all(kit: Kit, *, user_id: str) -> int:
    """The person deleted their account: every item they ever liked or unliked (persisted,
    or only in the overlay so far) gets a `forget` unlike, which the like workers count and
    then drop; their overlay and seq keys go. Returns the number of items. Safe to repeat:
    a second unlike of an item is no transition, so counts move once."""
    found = dict(await state.of_user(kit, user_id=user_id))
    overlay: dict[Any, Any] = await kit.redis.hgetall(overlay_key(kit, user_id))
    for item_id in overlay:
        if item_id not in found:
            kind = await items.kind(kit, item_id=item_id)
            found[item_id] = kind or "post"
    for item_id, item_type in sorted(found.items()):
        seq_key = kit.key("likes", "seq", item_id, user_id)
        seq = int(await kit.redis.eval(_NEXT_SEQ, 1, seq_key, str(time.time_ns() // 1000)))
        event = events.LikeToggled(
            id=f"like.toggled:forget:{item_id}:{user_id}",
            item_id=item_id,
            item_type="comment" if item_type == "comment" else "post",
            user_id=user_id,
            liked=False,
            seq=seq,
            forget=True,
        )
        await kit.require_bus().publish(event)
        await kit.redis.delete(seq_key)
    await kit.redis.delete(overlay_key(kit, user_id))
    await blocking.forget(kit.database, user_id=user_id)
    return len(found)
