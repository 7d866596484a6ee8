"""The platform as a browser sees it: the web component pointed at the test gateway, seeded
people who connected (fake) Spotify, and a Chromium launched from Debian's package."""

from __future__ import annotations

import asyncio
import os
import struct
import time
import urllib.request
import uuid
import zlib
from pathlib import Path
from typing import Any

import aiohttp

from rhime.runtime import local

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "tune$Up42"


def point_web_at_gateway(platform: local.Platform) -> None:
    """The local runner gives the gateway a free port; web must call that port. Restart web
    with RHIME_GATEWAY_URL when the runner has not set it."""
    web = platform.process("web")
    if web.env.get("RHIME_GATEWAY_URL") == platform.gateway_url:
        return
    web.env["RHIME_GATEWAY_URL"] = platform.gateway_url
    web.stop()
    web.wait(15)
    web.start()
    deadline = time.monotonic() + 30
    while not web.ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"web did not become ready; log: {web.log}")
        time.sleep(0.1)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Person:
    """Someone using the API directly (cookies kept), to seed what the browser sees."""

    def __init__(self, base: str, name: str) -> None:
        self.base = base
        self.name = name
        self.user_id = ""
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, self.base + path, **kwargs) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise AssertionError(f"{method} {path}: {response.status} {body}")
            return body

    async def join(self) -> Person:
        """Sign up, sign in and connect Spotify (the fake one consents by itself)."""
        email = f"{self.name}@example.com"
        creds = {"userName": self.name, "password": PASSWORD}
        await self.call("POST", "/api/auth/signup", json={**creds, "email": email})
        await self.call("POST", "/api/auth/signin", json=creds)
        async with self.http.get(self.base + "/api/spotify/authorize") as response:
            # the dance ends back home; a failure ends on /connect?error=...
            assert response.url.path == "/", str(response.url)
        self.user_id = (await self.call("GET", "/api/auth/me"))["userId"]
        return self

    async def share(self, query: str, caption: str) -> dict[str, Any]:
        found = await self.call("GET", "/api/spotify/search", params={"q": query, "limit": 1})
        post = {"trackId": found["tracks"][0]["id"], "caption": caption}
        return dict(await self.call("POST", "/api/posts", json=post))

    async def close(self) -> None:
        await self.http.close()


async def eventually(check: Any, *, timeout: float = 60, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


def png(
    width: int = 64,
    height: int = 64,
    rgb: tuple[int, int, int] = (109, 40, 217),
    *,
    noise: bool = False,
) -> bytes:
    """A valid PNG, made here so the test needs no image file. With `noise` its pixels are
    random and stored uncompressed: about 3 bytes a pixel, for a picture of a chosen size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    if noise:
        pixels = b"".join(b"\x00" + os.urandom(3 * width) for _ in range(height))
    else:
        pixels = (b"\x00" + bytes(rgb) * width) * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels, 0 if noise else 6))
        + chunk(b"IEND", b"")
    )
