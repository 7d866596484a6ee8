"""The recommendation service: my recommendations, best first, with an explanation; dismiss one."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import FastAPI

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
        resources=[page.GRAPH_VIEW, consumers.RQ],
        subscriptions=functools.partial(consumers.subscriptions, settings=settings),
        # the worker stages `user.recommended` here; this component publishes it
        outboxes=[store.ANNOUNCED],
        description="My friend recommendations with an explanation; dismiss one.",
    )
