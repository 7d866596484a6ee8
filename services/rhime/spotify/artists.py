"""Artists as Spotify describes them (name, picture, link), looked up with the caller's token
and remembered in Redis for a day: pictures change rarely, and a profile shows twenty."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel

# Spotify's /v1/artists takes up to 50 ids at once.
MAX_IDS = 50
CACHE_SECONDS = 86400


class Artist(BaseModel):
    id: str
    name: str
    image: str | None
    url: str | None


def compact(item: dict[str, Any]) -> Artist:
    images = item.get("images") or []
    # largest first; a list row wants a small one, but not the thumbnail of a thumbnail
    image = images[min(1, len(images) - 1)]["url"] if images else None
    return Artist(
        id=str(item["id"]),
        name=str(item.get("name", "")),
        image=image,
        url=(item.get("external_urls") or {}).get("spotify"),
    )


def from_body(body: Any) -> list[Artist]:
    items = body.get("artists") if isinstance(body, dict) else None
    return [compact(a) for a in items or [] if isinstance(a, dict) and a.get("id")]


async def cached(redis: aioredis.Redis, *, keys: Sequence[str]) -> list[Artist | None]:
    if not keys:
        return []
    found = await redis.mget(list(keys))
    return [Artist.model_validate(orjson.loads(v)) if v else None for v in found]


async def remember(redis: aioredis.Redis, *, key_of: Any, artists: Sequence[Artist]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for artist in artists:
            pipe.set(key_of(artist.id), artist.model_dump_json(), ex=CACHE_SECONDS)
        await pipe.execute()


async def lookup(
    redis: aioredis.Redis,
    *,
    key_of: Callable[[str], str],
    wanted: Sequence[str],
    fetch: Callable[[list[str]], Awaitable[Any]],
) -> list[Artist]:
    """The `wanted` artists in order, from the cache or else one `fetch` of the missing ones
    (a /v1/artists body); unknown ids are left out."""
    known = dict(zip(wanted, await cached(redis, keys=[key_of(i) for i in wanted]), strict=True))
    missing = [i for i, a in known.items() if a is None]
    if missing:
        fresh = from_body(await fetch(missing))
        await remember(redis, key_of=key_of, artists=fresh)
        known.update((a.id, a) for a in fresh)
    return [a for i in wanted if (a := known.get(i)) is not None]
