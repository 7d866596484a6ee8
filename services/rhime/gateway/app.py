"""gateway: the only public component (see `proxy` for the forwarding path)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from rhime.gateway import proxy
from rhime.gateway.settings import Settings
from rhime.kit import app as kit_app

__all__ = ["Settings", "create"]


def create(settings: Settings) -> FastAPI:
    async def open_pool(kit: kit_app.Kit) -> None:
        kit.extras["upstream"] = await proxy.upstream_pool(kit, settings)

    async def close_pool(kit: kit_app.Kit) -> None:
        try:
            await asyncio.Event().wait()  # cancelled when the app stops
        finally:
            await kit.extras["upstream"].close()

    app = kit_app.create_app(
        settings,
        title="gateway",
        description="The only public entry: verifies tokens, gates, rate-limits and routes.",
        redis=True,
        nats=False,
        on_ready=[open_pool],
        tasks=[close_pool],
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_middleware(proxy.Gateway, kit=app.state.kit, settings=settings)
    return app
