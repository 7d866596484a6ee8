"""The synthetic catalogue in Spotify's JSON shapes: users, artists, tracks, albums, pages."""

import dataclasses
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from rhime.music import population as pop


def base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def simple_artist(request: Request, artist: pop.Artist) -> dict[str, Any]:
    return {
        "id": artist.id,
        "name": artist.name,
        "type": "artist",
        "uri": f"spotify:artist:{artist.id}",
        "href": f"{base(request)}/v1/artists/{artist.id}",
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist.id}"},
    }


def paging(
    request: Request, items: Sequence[dict[str, Any]], total: int, limit: int, offset: int
) -> dict[str, Any]:
    def link(at: int) -> str:
        params = dict(request.query_params) | {"offset": str(at), "limit": str(limit)}
        return f"{base(request)}{request.url.path}?{urlencode(params)}"

    return {
        "href": link(offset),
        "items": list(items),
        "limit": limit,
        "offset": offset,
        "total": total,
        "next": link(offset + limit) if offset + limit < total else None,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
    }


@dataclasses.dataclass(frozen=True)
class Shapes:
    """Shapes that need the catalogue (a track's album and artists) or the address
    browsers reach the fake's images at."""

    catalogue: pop.Catalogue
    public_url: str | None

    def images(self, request: Request, key: str) -> list[dict[str, Any]]:
        url = f"{(self.public_url or base(request)).rstrip('/')}/_fake/image/{key}.svg"
        return [{"url": url, "height": size, "width": size} for size in (640, 300, 64)]

    def user(self, request: Request, taste: pop.UserTaste) -> dict[str, Any]:
        return {
            "id": taste.user_id,
            "display_name": taste.display_name,
            "type": "user",
            "uri": f"spotify:user:{taste.user_id}",
            "href": f"{base(request)}/v1/users/{taste.user_id}",
            "external_urls": {"spotify": f"https://open.spotify.com/user/{taste.user_id}"},
            "followers": {"href": None, "total": 0},
            "images": self.images(request, taste.user_id),
            "country": "SE",
            "product": "free",
        }

    def artist(self, request: Request, artist: pop.Artist) -> dict[str, Any]:
        return simple_artist(request, artist) | {
            "genres": list(artist.genres),
            "popularity": artist.popularity,
            "followers": {"href": None, "total": artist.followers},
            "images": self.images(request, artist.id),
        }

    def track(self, request: Request, track: pop.Track) -> dict[str, Any]:
        artists = self.catalogue.artists
        return {
            "id": track.id,
            "name": track.name,
            "type": "track",
            "uri": f"spotify:track:{track.id}",
            "href": f"{base(request)}/v1/tracks/{track.id}",
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track.id}"},
            "external_ids": {},
            "artists": [simple_artist(request, artists[a]) for a in track.artist_ids],
            "album": self.album(request, self.catalogue.albums[track.album_id]),
            "popularity": track.popularity,
            "duration_ms": track.duration_ms,
            "explicit": False,
            "is_local": False,
            "disc_number": 1,
            "track_number": track.track_number,
            "preview_url": None,
        }

    def album(self, request: Request, album: pop.Album) -> dict[str, Any]:
        album_artist = self.catalogue.artists[album.artist_id]
        return {
            "id": album.id,
            "name": album.name,
            "type": "album",
            "album_type": "album",
            "total_tracks": 4,
            "release_date": album.release_date,
            "release_date_precision": "day",
            "uri": f"spotify:album:{album.id}",
            "href": f"{base(request)}/v1/albums/{album.id}",
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album.id}"},
            "images": self.images(request, album.id),
            "artists": [simple_artist(request, album_artist)],
        }
