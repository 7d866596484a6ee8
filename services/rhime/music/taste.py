"""Taste profiles: weighted tracks, artists and genres built from ranked top items.

Inputs are what Spotify's ``/me/top/tracks`` and ``/me/top/artists`` return, already reduced to
plain data and ordered by rank (index 0 is the favourite).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol

Category = Literal["tracks", "artists", "genres"]
CATEGORIES: tuple[Category, ...] = ("tracks", "artists", "genres")


@dataclasses.dataclass(frozen=True, slots=True)
class TopTrack:
    id: str
    name: str
    artist_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class TopArtist:
    id: str
    name: str
    genres: tuple[str, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TopItems:
    """A user's top tracks and artists as fetched from Spotify, with genres back-filled."""

    tracks: list[TopTrack]
    artists: list[TopArtist]
    genres_by_artist: dict[str, tuple[str, ...]]
    names: dict[str, str]  # track and artist ids → names


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """Non-negative weights per item; a genre's key is the genre name."""

    tracks: dict[str, float]
    artists: dict[str, float]
    genres: dict[str, float]

    def weights(self, category: Category) -> dict[str, float]:
        if category == "tracks":
            return self.tracks
        if category == "artists":
            return self.artists
        return self.genres

    def is_empty(self) -> bool:
        return not (self.tracks or self.artists or self.genres)


EMPTY = Profile(tracks={}, artists={}, genres={})


class ProfileBuilder(Protocol):
    def __call__(
        self,
        *,
        tracks: Sequence[TopTrack],
        artists: Sequence[TopArtist],
        genres_by_artist: Mapping[str, Sequence[str]] | None = None,
    ) -> Profile: ...


# The original's constants (§13): every track 3, every top artist 8, +3 per track appearance.
ORIGINAL_TRACK_WEIGHT = 3.0
ORIGINAL_ARTIST_WEIGHT = 8.0


def original_profile(
    *,
    tracks: Sequence[TopTrack],
    artists: Sequence[TopArtist],
    genres_by_artist: Mapping[str, Sequence[str]] | None = None,
) -> Profile:
    """The original weighting, rank-blind.

    ``genres_by_artist`` holds genres fetched separately (``/artists?ids=``) for artists seen
    only on tracks; top artists carry their own genres.
    """
    return _build(
        tracks=tracks,
        artists=artists,
        genres_by_artist=genres_by_artist,
        track_weight=lambda _rank: ORIGINAL_TRACK_WEIGHT,
        artist_weight=lambda _rank: ORIGINAL_ARTIST_WEIGHT,
        split_genres=False,
    )


def _discount(rank: int) -> float:
    # DCG-style: the favourite counts 1, the 50th about 0.18; ranks are 0-based
    return 1.0 / math.log2(rank + 2)


def ranked_profile(
    *,
    tracks: Sequence[TopTrack],
    artists: Sequence[TopArtist],
    genres_by_artist: Mapping[str, Sequence[str]] | None = None,
) -> Profile:
    """Rank-aware weighting: the original's proportions, discounted by rank.

    A favourite counts more than the 50th item, and an artist's weight is spread over its
    genres so that artists tagged with many genres do not dominate the genre vector.
    """
    return _build(
        tracks=tracks,
        artists=artists,
        genres_by_artist=genres_by_artist,
        track_weight=lambda rank: ORIGINAL_TRACK_WEIGHT * _discount(rank),
        artist_weight=lambda rank: ORIGINAL_ARTIST_WEIGHT * _discount(rank),
        split_genres=True,
    )


def _build(
    *,
    tracks: Sequence[TopTrack],
    artists: Sequence[TopArtist],
    genres_by_artist: Mapping[str, Sequence[str]] | None,
    track_weight: Callable[[int], float],
    artist_weight: Callable[[int], float],
    split_genres: bool,
) -> Profile:
    track_weights: dict[str, float] = {}
    artist_weights: dict[str, float] = {}
    artist_genres: dict[str, Sequence[str]] = dict(genres_by_artist or {})
    for rank, artist in enumerate(artists):
        if artist.id in artist_weights:
            continue  # a repeated entry keeps its best rank
        artist_weights[artist.id] = artist_weight(rank)
        if artist.genres:
            artist_genres[artist.id] = artist.genres
    for rank, track in enumerate(tracks):
        if track.id in track_weights:
            continue
        weight = track_weight(rank)
        track_weights[track.id] = weight
        for artist_id in dict.fromkeys(track.artist_ids):
            artist_weights[artist_id] = artist_weights.get(artist_id, 0.0) + weight
    genre_weights: dict[str, float] = {}
    for artist_id, weight in artist_weights.items():
        genres = tuple(dict.fromkeys(artist_genres.get(artist_id, ())))
        if not genres:
            continue
        share = weight / len(genres) if split_genres else weight
        for genre in genres:
            genre_weights[genre] = genre_weights.get(genre, 0.0) + share
    return Profile(tracks=track_weights, artists=artist_weights, genres=genre_weights)


BUILDERS: dict[str, ProfileBuilder] = {"original": original_profile, "ranked": ranked_profile}
