"""The notification component: likes, comments and follows others did to me and people new
among my recommendations, grouped, with an unread count cheap enough for every open page to
ask often."""

from __future__ import annotations

import functools

from fastapi import FastAPI
from pydantic import Field

from rhime.kit import app as kit_app
from rhime.kit.settings import Settings as KitSettings
from rhime.notification import causes, consumers, groups, inbox_routes, internal, items


class Settings(KitSettings):
    keep: int = Field(
        default=200, ge=10, le=2000, description="notifications kept per person (the newest)"
    )
    page_size: int = Field(
        default=20, ge=1, le=50, description="notifications per page when no `limit` is given"
    )


def create(settings: Settings) -> FastAPI:
    limits = causes.Limits(keep=settings.keep)
    return kit_app.create_app(
        settings,
        title="notification",
        database="notification",
        redis=False,
        api_prefix="/api/notifications",
        routers=[
            inbox_routes.router(page_size=settings.page_size),
            internal.router(keep=settings.keep),
        ],
        indexes={
            **items.INDEXES,
            groups.COLLECTION: groups.INDEXES,
            causes.FOLLOWS: causes.FOLLOWS_INDEXES,
        },
        subscriptions=functools.partial(consumers.subscriptions, limits=limits),
    )
