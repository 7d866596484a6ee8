"""The fake's own controls under ``/_fake``: inject faults, reset, count requests, and the
placeholder images its JSON links to."""

import dataclasses
import hashlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from rhime.fakespotify.state import FakeState, Fault


class FaultRequest(BaseModel):
    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=1)
    retry_after: int | None = Field(default=None, ge=0)
    path_prefix: str = "/v1/"
    # seconds the fault takes to answer: a slow Spotify
    delay: float = Field(default=0.0, ge=0, le=60)


def router(*, state: FakeState) -> APIRouter:
    routes = APIRouter(prefix="/_fake")

    @routes.post("/faults")
    async def add_fault(fault: FaultRequest) -> dict[str, Any]:
        state.faults.append(
            Fault(fault.status, fault.count, fault.retry_after, fault.path_prefix, fault.delay)
        )
        return {"faults": [dataclasses.asdict(f) for f in state.faults]}

    @routes.post("/reset")
    async def reset() -> dict[str, Any]:
        state.faults.clear()
        state.codes.clear()
        state.access.clear()
        state.refresh.clear()
        state.next_user = 0
        state.v1_requests = 0
        state.token_requests = 0
        return {"reset": True}

    @routes.get("/stats")
    async def stats() -> dict[str, Any]:
        return {
            "v1_requests": state.v1_requests,
            "token_requests": state.token_requests,
            "faults": [dataclasses.asdict(f) for f in state.faults],
            "next_user": state.next_user,
        }

    routes.get("/image/{key}.svg")(image)
    return routes


async def image(key: str) -> Response:
    hue = int(hashlib.blake2b(key.encode(), digest_size=2).hexdigest(), 16) % 360
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        f'<rect width="64" height="64" fill="hsl({hue},55%,55%)"/></svg>'
    )
    return Response(svg, media_type="image/svg+xml")
