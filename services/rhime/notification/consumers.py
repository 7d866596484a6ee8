"""The events that make, change and remove notifications."""

from __future__ import annotations

from typing import Any

from rhime import blocking, events
from rhime.kit import app as kit_app
from rhime.kit import bus
from rhime.notification import causes, forgotten


def subscriptions(kit: kit_app.Kit, *, limits: causes.Limits) -> list[bus.Subscription[Any]]:
    return [*content(kit, limits=limits), *people(kit, limits=limits)]


async def recheck(kit: kit_app.Kit, *people: str, limits: causes.Limits) -> None:
    # each handler removes again what it wrote of someone who deleted their account
    await forgotten.recheck(kit, people=people, limits=limits)


def content(kit: kit_app.Kit, *, limits: causes.Limits) -> list[bus.Subscription[Any]]:
    """Posts, comments and likes."""

    async def post_created(event: events.PostCreated) -> None:
        await causes.post_created(kit, event)
        await recheck(kit, event.user_id, limits=limits)

    async def post_deleted(event: events.PostDeleted) -> None:
        await causes.post_deleted(kit, event, limits=limits)
        await recheck(kit, event.user_id, limits=limits)

    async def comment_created(event: events.CommentCreated) -> None:
        await causes.comment_created(kit, event, limits=limits)
        await recheck(kit, event.user_id, limits=limits)

    async def comment_deleted(event: events.CommentDeleted) -> None:
        await causes.comment_deleted(kit, event, limits=limits)
        await recheck(kit, event.user_id, limits=limits)

    async def like_toggled(event: events.LikeToggled) -> None:
        await causes.like_toggled(kit, event, limits=limits)
        await recheck(kit, event.user_id, limits=limits)

    return [
        bus.Subscription(event=events.PostCreated, handler=post_created),
        bus.Subscription(event=events.PostDeleted, handler=post_deleted),
        bus.Subscription(event=events.CommentCreated, handler=comment_created),
        bus.Subscription(event=events.CommentDeleted, handler=comment_deleted),
        bus.Subscription(event=events.LikeToggled, handler=like_toggled),
    ]


def people(kit: kit_app.Kit, *, limits: causes.Limits) -> list[bus.Subscription[Any]]:
    """Follows, recommendations, blocks and deleted accounts."""

    async def followed(event: events.UserFollowed) -> None:
        await causes.follow_changed(kit, event, limits=limits)
        await recheck(kit, event.follower_id, event.followee_id, limits=limits)

    async def unfollowed(event: events.UserUnfollowed) -> None:
        await causes.follow_changed(kit, event, limits=limits)
        await recheck(kit, event.follower_id, event.followee_id, limits=limits)

    async def recommended(event: events.UserRecommended) -> None:
        await causes.recommended(kit, event, limits=limits)
        await recheck(kit, event.user_id, event.other_id, limits=limits)

    async def block_changed(event: blocking.Change) -> None:
        await causes.block_changed(kit, event, limits=limits)

    async def user_deleted(event: events.UserDeleted) -> None:
        await forgotten.forget(kit, user_id=event.user_id, limits=limits)
        await blocking.forget(kit.database, user_id=event.user_id)

    return [
        bus.Subscription(event=events.UserFollowed, handler=followed),
        bus.Subscription(event=events.UserUnfollowed, handler=unfollowed),
        bus.Subscription(event=events.UserRecommended, handler=recommended),
        bus.Subscription(event=events.UserBlocked, handler=block_changed),
        bus.Subscription(event=events.UserUnblocked, handler=block_changed),
        # many groups take a while; what a timeout interrupts, a redelivery finishes
        bus.Subscription(event=events.UserDeleted, handler=user_deleted, ack_wait=90.0),
    ]
