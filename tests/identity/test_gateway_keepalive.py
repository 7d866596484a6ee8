"""Components keep idle connections open longer than the gateway's pool keeps them: otherwise
a component closes a connection just as the gateway reuses it, and a POST on it gets 502."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import uvicorn

from rhime import cli
from rhime.auth import app as auth_app
from rhime.gateway import proxy
from rhime.runtime import servers
from tests.conftest import Served

ACCESS_SECRET = "test-access-token-secret-0123456789-abcdefgh"
REQUEST = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"


async def test_an_idle_connection_outlives_the_gateways_pool(
    make_settings: Callable[..., Any],
) -> None:
    assert cli.KEEP_ALIVE_SECONDS > proxy.POOL_KEEPALIVE_SECONDS
    settings = make_settings(
        auth_app.Settings,
        component="auth",
        access_token_secret=ACCESS_SECRET,
        host="127.0.0.1",
        port=servers.free_port(),
    )
    config = cli.server_config(auth_app.create(settings), settings)
    served = Served(config.app, settings.port)
    served.server = uvicorn.Server(config)  # served as `rhime serve` serves it
    await served.start(wait_ready=False)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", settings.port)
        for wait in (0, 6):  # past uvicorn's default of 5 s
            await asyncio.sleep(wait)
            writer.write(REQUEST)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()
    finally:
        await served.stop()
