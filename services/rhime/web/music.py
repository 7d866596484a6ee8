"""Tracks, artists and genres from the music API, in the one shape templates use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def track(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`{id, name, artists: [{id, name}], url, image}` from our API's or Spotify's shape."""
    url = raw.get("url") or (raw.get("external_urls") or {}).get("spotify")
    image = raw.get("image")
    if not image:
        images = raw.get("images") or (raw.get("album") or {}).get("images") or []
        image = _first_image(images)
    artists = [
        {"id": str(a.get("id", "")), "name": str(a.get("name", ""))}
        for a in raw.get("artists") or ()
        if isinstance(a, Mapping)
    ]
    return {
        "id": str(raw.get("id", "")),
        "name": str(raw.get("name", "")),
        "artists": artists,
        "url": url,
        "image": image,
    }


def artist(raw: Mapping[str, Any]) -> dict[str, Any]:
    url = raw.get("url") or (raw.get("external_urls") or {}).get("spotify")
    image = raw.get("image") or _first_image(raw.get("images") or [])
    return {
        "id": str(raw.get("id", "")),
        "name": str(raw.get("name", "")),
        "url": url,
        "image": image,
        "genres": [str(g) for g in raw.get("genres") or ()],
    }


def with_pictures(found: list[dict[str, Any]], details: Any) -> list[dict[str, Any]]:
    """Artists with the picture and link from `GET /api/spotify/artists`, where it has them."""
    by_id = {str(d.get("id")): d for d in items(details, "artists") if isinstance(d, Mapping)}
    merged = []
    for item in found:
        known = by_id.get(item["id"], {})
        merged.append(
            {
                **item,
                "image": item.get("image") or known.get("image"),
                "url": item.get("url") or known.get("url"),
            }
        )
    return merged


def genre(raw: Any, rank: int) -> tuple[str, float]:
    """(name, weight); a bare name weighs by its rank, so the mix still reads right."""
    if isinstance(raw, str):
        return raw, 1.0 / (rank + 1)
    if isinstance(raw, Mapping):
        name = str(raw.get("name") or raw.get("genre") or raw.get("id") or "")
        for key in ("weight", "wt", "score", "count"):
            if isinstance(raw.get(key), int | float):
                return name, float(raw[key])
        return name, 1.0 / (rank + 1)
    return "", 0.0


def items(body: Any, *keys: str) -> list[Any]:
    """The list in a response: under one of `keys`, `items`, Spotify's `{x: {items}}`, or bare."""
    if isinstance(body, list):
        return body
    if not isinstance(body, Mapping):
        return []
    for key in (*keys, "items"):
        value = body.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, Mapping) and isinstance(value.get("items"), list):
            return list(value["items"])
    return []


def _first_image(images: Any) -> str | None:
    for image in images:
        if isinstance(image, Mapping) and image.get("url"):
            return str(image["url"])
        if isinstance(image, str):
            return image
    return None
