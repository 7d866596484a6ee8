from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from rhime.kit import app as kit_app
from rhime.kit import calls, errors, identity
from rhime.runtime import servers


def other(settings: Any, entered: asyncio.Event) -> Any:
    router = APIRouter()

    @router.get("/never")
    async def never(caller: identity.Caller) -> None:
        entered.set()
        await asyncio.Event().wait()

    @router.get("/broken")
    async def broken(caller: identity.Caller) -> PlainTextResponse:
        return PlainTextResponse("Internal Server Error", status_code=500)

    return kit_app.create_app(settings, title="other", nats=False, routers=[router])


async def test_a_cancelled_call_stays_cancelled(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    port = servers.free_port()
    entered = asyncio.Event()
    settings = make_settings(service_urls={"other": f"http://127.0.0.1:{port}"})
    served = await serve(other(settings, entered), port=port)
    call = asyncio.create_task(calls.call(served.app.state.kit, "other", "GET", "/never"))
    await entered.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_plain_text_server_error_is_a_bad_gateway(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    port = servers.free_port()
    settings = make_settings(service_urls={"other": f"http://127.0.0.1:{port}"})
    served = await serve(other(settings, asyncio.Event()), port=port)
    with pytest.raises(errors.ApiError) as caught:
        await calls.call(served.app.state.kit, "other", "GET", "/broken")
    assert caught.value.status == 502
