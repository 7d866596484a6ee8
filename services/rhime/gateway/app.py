"""gateway: the only public component (see `proxy` for the forwarding path)."""

from __future__ import annotations

from fastapi import FastAPI

from rhime.gateway import proxy
from rhime.gateway.settings import Settings
from rhime.kit import app as kit_app
from rhime.kit.kit import Resource

__all__ = ["Settings", "create"]


def create(settings: Settings) -> FastAPI:
    upstream = Resource("upstream", open=lambda _: proxy.upstream_pool(settings))
    app = kit_app.create_app(
        settings,
        title="gateway",
        description="The only public entry: verifies tokens, gates, rate-limits and routes.",
        redis=True,
        nats=False,
        resources=[upstream],
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_middleware(proxy.Gateway, kit=app.state.kit, settings=settings, upstream=upstream)
    return app
