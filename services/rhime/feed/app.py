"""The feed component: home and profile timelines of fully renderable posts."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import FastAPI
from pydantic import Field

from rhime import blocking, events
from rhime.feed import authors, fanout, graph, pages, timeline_routes
from rhime.kit import app as kit_app
from rhime.kit import bus
from rhime.kit.settings import Settings as KitSettings


class Settings(KitSettings):
    timeline_cap: int = Field(
        default=800,
        ge=10,
        description="posts kept per cached home timeline in Redis; older pages come from the "
        "feed's post index",
    )
    page_size: int = Field(
        default=10, ge=1, le=50, description="posts per feed page when no `limit` is given"
    )
    big_threshold: int = Field(
        default=10_000,
        ge=1,
        description="followers above which an author's posts are merged on read instead of "
        "fanned out",
    )
    inactive_days: float = Field(
        default=30,
        gt=0,
        description="days without reading after which fan-out skips a person and drops their "
        "timeline (rebuilt on return)",
    )
    fanout_batch: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="user ids per user-graph-view batch and per fan-out Redis pipeline",
    )
    post_cache_seconds: int = Field(
        default=86_400, description="seconds a post is cached in Redis (posts never change)"
    )
    card_cache_seconds: int = Field(
        default=60, description="seconds an author card (names, profile image) is cached in Redis"
    )


def create(settings: Settings) -> FastAPI:
    limits = page_limits(settings)
    return kit_app.create_app(
        settings,
        title="feed",
        database="feed",
        api_prefix="/api/feed",
        routers=[timeline_routes.router(limits=limits, page_size=settings.page_size)],
        indexes=authors.INDEXES,
        subscriptions=functools.partial(subscriptions, limits=fanout_limits(settings)),
        resources=[graph.CHANNEL],
    )


def page_limits(settings: Settings) -> pages.Limits:
    return pages.Limits(
        cap=settings.timeline_cap,
        inactive_seconds=int(settings.inactive_days * 86_400),
        batch=settings.fanout_batch,
        post_cache_seconds=settings.post_cache_seconds,
        card_cache_seconds=settings.card_cache_seconds,
    )


def fanout_limits(settings: Settings) -> fanout.Limits:
    return fanout.Limits(
        cap=settings.timeline_cap,
        big_threshold=settings.big_threshold,
        batch=settings.fanout_batch,
        inactive_seconds=int(settings.inactive_days * 86_400),
    )


def subscriptions(kit: kit_app.Kit, *, limits: fanout.Limits) -> list[bus.Subscription[Any]]:
    async def created(event: events.PostCreated) -> None:
        await fanout.post_created(kit, event, limits=limits)

    async def deleted(event: events.PostDeleted) -> None:
        await fanout.post_deleted(kit, event, limits=limits)
        await kit.redis.delete(pages.post_key(kit, event.post_id))

    async def followed(event: events.UserFollowed) -> None:
        await fanout.user_followed(kit, event, limits=limits)

    async def unfollowed(event: events.UserUnfollowed) -> None:
        await fanout.user_unfollowed(kit, event)

    async def user_deleted(event: events.UserDeleted) -> None:
        await fanout.user_deleted(kit, event)

    async def blocked(event: blocking.Change) -> None:
        await fanout.block_changed(kit, event)

    return [
        bus.Subscription(event=events.UserDeleted, handler=user_deleted),
        bus.Subscription(event=events.PostCreated, handler=created),
        bus.Subscription(event=events.PostDeleted, handler=deleted),
        bus.Subscription(event=events.UserFollowed, handler=followed),
        bus.Subscription(event=events.UserUnfollowed, handler=unfollowed),
        bus.Subscription(event=events.UserBlocked, handler=blocked),
        bus.Subscription(event=events.UserUnblocked, handler=blocked),
    ]
