"""like-updater: persists like state from `like.toggled`.

It holds up to `batch` events (fetches joining for up to `linger_seconds`), keeps the newest
action per (item, person) and writes them with one unordered bulk of seq-guarded upserts
(see `state.apply`), then acks the batch. A crash before the write commits redelivers the
batch; re-applying it is harmless because every write is guarded by seq.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from pydantic import Field

from rhime import events
from rhime.kit import app as kit_app
from rhime.kit import batches
from rhime.kit.settings import Settings as KitSettings
from rhime.likes import counts, state


class Settings(KitSettings):
    batch: int = Field(default=5000, description="most like events written at once")
    window_seconds: float = Field(
        default=0.2, description="seconds a fetch waits to fill the batch"
    )
    linger_seconds: float = Field(
        default=1.0,
        description="seconds a batch waits for more events to coalesce per (item, person) "
        "into its one write; state lags likes by this much (isLiked does not: it has the "
        "overlay)",
    )


def create(settings: Settings) -> FastAPI:
    def subscriptions(kit: kit_app.Kit) -> list[batches.Batches[events.LikeToggled]]:
        async def handle(batch: Sequence[events.LikeToggled]) -> None:
            await state.apply(kit, batch)

        return [
            batches.Batches(
                event=events.LikeToggled,
                handler=handle,
                batch=settings.batch,
                window=settings.window_seconds,
                linger=settings.linger_seconds,
            )
        ]

    return kit_app.create_app(
        settings,
        title="like-updater",
        database="likes",
        indexes={state.COLLECTION: state.INDEXES},
        resources=[counts.WRITES],
        subscriptions=subscriptions,
    )
