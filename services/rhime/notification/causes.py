"""Events → notifications: who is told what, and never about themselves."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING

from pymongo import IndexModel
from pymongo.errors import DuplicateKeyError

from rhime import blocking, events
from rhime.notification import groups, inbox, items

if TYPE_CHECKING:
    from rhime.kit.kit import Kit

FOLLOWS = "follows"  # per follower→followee: the group its follow was counted in
FOLLOWS_INDEXES = [IndexModel([("group", 1)])]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    keep: int  # notifications kept per person


async def _apply(kit: Kit, state: groups.State | None, limits: Limits) -> None:
    if state is not None:
        await inbox.sync(kit, state=state, keep=limits.keep)


async def _live_item(kit: Kit, item_id: str) -> items.Item | None:
    """The item, or None when it or its post was deleted."""
    item = await items.find(kit, item_id=item_id)
    if item.deleted:
        return None
    if item.type == "comment" and (await items.find(kit, item_id=item.post_id)).deleted:
        return None
    return item


async def like_toggled(kit: Kit, event: events.LikeToggled, *, limits: Limits) -> None:
    item = await _live_item(kit, event.item_id)
    if item is None or item.owner == event.user_id:
        return
    group = groups.like_group(
        owner=item.owner, item_type=item.type, item_id=item.item_id, post_id=item.post_id
    )
    state = await groups.record(
        kit,
        group=group,
        cause=event.user_id,
        actor=event.user_id,
        seq=event.seq,
        active=event.liked,
        at=event.occurred_at,
    )
    await _apply(kit, state, limits)


async def post_created(kit: Kit, event: events.PostCreated) -> None:
    await items.created(
        kit, item_id=event.post_id, type="post", owner=event.user_id, post_id=event.post_id
    )


async def post_deleted(kit: Kit, event: events.PostDeleted, *, limits: Limits) -> None:
    await items.deleted(
        kit, item_id=event.post_id, type="post", owner=event.user_id, post_id=event.post_id
    )
    owner, post_id = event.user_id, event.post_id
    gone = [
        groups.like_group(owner=owner, item_type="post", item_id=post_id, post_id=post_id),
        groups.comment_group(owner=owner, post_id=post_id),
    ]
    # The post's comments go with it (without events of their own), and so do their likes.
    for comment_id in await items.comments_on(kit, post_id=post_id):
        comment = await items.find(kit, item_id=comment_id)
        gone.append(
            groups.like_group(
                owner=comment.owner, item_type="comment", item_id=comment_id, post_id=post_id
            )
        )
    for group in gone:
        await _apply(kit, await groups.remove(kit, group=group), limits)


async def comment_created(kit: Kit, event: events.CommentCreated, *, limits: Limits) -> None:
    await items.created(
        kit,
        item_id=event.comment_id,
        type="comment",
        owner=event.user_id,
        post_id=event.post_id,
    )
    post = await items.find(kit, item_id=event.post_id)
    if post.deleted or post.owner == event.user_id:
        return
    await _comment_on(kit, post, event, added=True, limits=limits)


async def comment_deleted(kit: Kit, event: events.CommentDeleted, *, limits: Limits) -> None:
    await items.deleted(
        kit,
        item_id=event.comment_id,
        type="comment",
        owner=event.user_id,
        post_id=event.post_id,
    )
    likes = groups.like_group(
        owner=event.user_id, item_type="comment", item_id=event.comment_id, post_id=event.post_id
    )
    await _apply(kit, await groups.remove(kit, group=likes), limits)
    post = await items.find(kit, item_id=event.post_id)
    if post.owner == event.user_id:
        return
    await _comment_on(kit, post, event, added=False, limits=limits)


async def follow_changed(
    kit: Kit, event: events.UserFollowed | events.UserUnfollowed, *, limits: Limits
) -> None:
    follower, followee = event.follower_id, event.followee_id
    if follower == followee:
        return
    # Follows are grouped per day; a later unfollow (or refollow) finds its follow's group.
    day = event.occurred_at.date()
    key = f"{follower}:{followee}"
    group = groups.follow_group(followee=followee, day=day)
    with contextlib.suppress(DuplicateKeyError):
        await kit.database[FOLLOWS].update_one(
            {"_id": key}, {"$setOnInsert": {"group": group.group_id}}, upsert=True
        )
    doc = await kit.database[FOLLOWS].find_one({"_id": key})
    assert doc is not None
    group = dataclasses.replace(group, group_id=doc["group"])
    state = await groups.record(
        kit,
        group=group,
        cause=follower,
        actor=follower,
        seq=events.follow_version(event),
        active=isinstance(event, events.UserFollowed),
        at=event.occurred_at,
    )
    await _apply(kit, state, limits)


async def recommended(kit: Kit, event: events.UserRecommended, *, limits: Limits) -> None:
    """A person new among the recipient's recommendations: one cause of the week's group (the
    pair is announced once, and a repeat of it changes nothing). Never for two people of
    whom one blocks the other."""
    recipient, other = event.user_id, event.other_id
    if recipient == other or await blocking.between(kit.database, a=recipient, b=other):
        return
    state = await groups.record(
        kit,
        group=groups.recommendation_group(recipient=recipient, week=event.week),
        cause=other,
        actor=other,
        seq=1,
        active=True,
        at=event.occurred_at,
    )
    await _apply(kit, state, limits)


async def block_changed(kit: Kit, event: blocking.Change, *, limits: Limits) -> None:
    """Keep the copy of blocks; a block also withdraws the recommendations it announced of
    either to the other."""
    await blocking.apply(kit.database, event)
    if not isinstance(event, events.UserBlocked):
        return
    for recipient, other in (
        (event.blocker_id, event.blocked_id),
        (event.blocked_id, event.blocker_id),
    ):
        query = {"recipient": recipient, "kind": "recommendation", groups.ACTORS: other}
        async for doc in kit.database[groups.COLLECTION].find(query, {"_id": 1}):
            state = await groups.drop_actor(kit, group_id=doc["_id"], actor=other)
            await _apply(kit, state, limits)


async def _comment_on(
    kit: Kit,
    post: items.Item,
    event: events.CommentCreated | events.CommentDeleted,
    *,
    added: bool,
    limits: Limits,
) -> None:
    """Record a comment on `post` as its cause: made (seq 1) or deleted (seq 2, wins)."""
    state = await groups.record(
        kit,
        group=groups.comment_group(owner=post.owner, post_id=post.item_id),
        cause=event.comment_id,
        actor=event.user_id,
        seq=1 if added else 2,
        active=added,
        at=event.occurred_at,
    )
    await _apply(kit, state, limits)
