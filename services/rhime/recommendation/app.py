"""The recommendation service: my recommendations, best first, with an explanation; dismiss one."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import FastAPI

from rhime.graphview import client as graphview
from rhime.kit import app as kit_app
from rhime.recommendation import consumers, dismissal, page, store
from rhime.recommendation.cursor import decode as decode_cursor
from rhime.recommendation.cursor import encode as encode_cursor
from rhime.recommendation.settings import Settings

# the page cursor's format is read here too, beside `create`
__all__ = ["create", "decode_cursor", "encode_cursor"]


def create(settings: Settings) -> FastAPI:
    indexes: Any = store.INDEXES
    return kit_app.create_app(
        settings,
        title="recommendation",
        database=store.DATABASE,
        api_prefix="/api/recommendations",
        routers=[
            page.router(page_size=settings.page_size),
            dismissal.router(dismiss_days=settings.dismiss_days),
        ],
        indexes=indexes,
        on_ready=[functools.partial(open_channel, settings=settings)],
        subscriptions=functools.partial(consumers.subscriptions, settings=settings),
        # the worker stages `user.recommended` here; this component publishes it
        outboxes=[store.ANNOUNCED],
        tasks=[close_channel],
        description="My friend recommendations with an explanation; dismiss one.",
    )


async def open_channel(kit: kit_app.Kit, *, settings: Settings) -> None:
    kit.extras["graphview"] = (
        graphview.channel(settings, tracing=kit.tracing) if settings.use_graph_view else None
    )


async def close_channel(kit: kit_app.Kit) -> None:
    try:
        await _forever()
    finally:
        channel = kit.extras.get("graphview")
        if channel is not None:
            await channel.close(grace=None)
        if "rq" in kit.extras:
            kit.extras["rq"].close()


async def _forever() -> None:
    await asyncio.Event().wait()
