"""Track search with the caller's own token, returning compact track objects."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Spotify's base-62 ids are 22 characters; a little slack, nothing that could leave the path
TRACK_ID = r"^[A-Za-z0-9]{1,64}$"


class Artist(BaseModel):
    id: str
    name: str


class Track(BaseModel):
    id: str
    name: str
    artists: list[Artist]
    url: str | None
    image: str | None


def compact(item: dict[str, Any]) -> Track:
    images = (item.get("album") or {}).get("images") or []
    # Spotify lists images largest first; a card wants a small one
    image = images[-1]["url"] if images else None
    return Track(
        id=str(item["id"]),
        name=str(item.get("name", "")),
        artists=[
            Artist(id=str(a["id"]), name=str(a.get("name", "")))
            for a in item.get("artists") or []
            if a.get("id")
        ],
        url=(item.get("external_urls") or {}).get("spotify"),
        image=image,
    )


def tracks(body: dict[str, Any]) -> list[Track]:
    items = (body.get("tracks") or {}).get("items") or []
    return [compact(item) for item in items if item and item.get("id")]
