"""A deterministic synthetic population of listeners with planted taste communities.

The catalogue (artists, tracks, genres) is built once per :class:`PopulationSpec` and cached;
one user's taste is then a few dozen seeded random draws, so the fake Spotify can serve it per
request and a benchmark can build 100K users.

Each community has its own artists and genres; one genre per community is shared with the next
community (so genres alone are ambiguous), a small set of globally popular artists appears in
almost everyone's top list, and a long tail of artists adds noise.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import itertools
import random
from typing import Literal

from rhime.music.taste import TopArtist, TopTrack

TimeRange = Literal["short_term", "medium_term", "long_term"]
TIME_RANGES: tuple[TimeRange, ...] = ("short_term", "medium_term", "long_term")


@dataclasses.dataclass(frozen=True, slots=True)
class PopulationSpec:
    seed: int = 1
    users: int = 1000
    communities: int = 10
    artists_per_community: int = 40
    genres_per_community: int = 4
    tracks_per_artist: int = 8
    popular_artists: int = 25
    long_tail_artists: int = 2000
    # share of a user's top artists drawn from their community / the popular set / the tail
    community_share: float = 0.4
    popular_share: float = 0.35
    # share of the community picks taken from the next community's artists instead
    neighbour_share: float = 0.25


@dataclasses.dataclass(frozen=True, slots=True)
class Artist:
    id: str
    name: str
    genres: tuple[str, ...]
    popularity: int
    followers: int
    community: int | None  # None for popular and long-tail artists


@dataclasses.dataclass(frozen=True, slots=True)
class Album:
    id: str
    name: str
    artist_id: str
    release_date: str


@dataclasses.dataclass(frozen=True, slots=True)
class Track:
    id: str
    name: str
    artist_ids: tuple[str, ...]
    album_id: str
    popularity: int
    duration_ms: int
    track_number: int


@dataclasses.dataclass(frozen=True, slots=True)
class Catalogue:
    artists: dict[str, Artist]
    albums: dict[str, Album]
    tracks: dict[str, Track]
    tracks_by_artist: dict[str, tuple[str, ...]]
    community_artists: tuple[tuple[str, ...], ...]
    popular_artists: tuple[str, ...]
    tail_artists: tuple[str, ...]
    # the plain shapes taste.py consumes, built once and shared by every user
    top_artists: dict[str, TopArtist]
    top_tracks: dict[str, TopTrack]


@dataclasses.dataclass(frozen=True, slots=True)
class UserTaste:
    index: int
    user_id: str
    display_name: str
    community: int
    tracks: list[TopTrack]
    artists: list[TopArtist]


_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_WORDS = [
    "amber",
    "velvet",
    "neon",
    "paper",
    "silver",
    "hollow",
    "quiet",
    "golden",
    "static",
    "lunar",
    "crimson",
    "northern",
    "electric",
    "broken",
    "wild",
    "glass",
    "midnight",
    "copper",
    "sleepy",
    "distant",
    "violet",
    "honey",
    "marble",
    "restless",
    "gentle",
    "falling",
    "rusty",
    "secret",
    "burning",
    "frozen",
    "endless",
]
_NOUNS = [
    "kites",
    "rivers",
    "engines",
    "wolves",
    "lanterns",
    "harbours",
    "mirrors",
    "echoes",
    "gardens",
    "signals",
    "tides",
    "horses",
    "satellites",
    "cities",
    "ghosts",
    "orchards",
    "machines",
    "sparrows",
    "islands",
    "parades",
    "letters",
    "shadows",
    "comets",
    "bells",
    "towers",
]
_GENRE_ROOTS = [
    "indie",
    "folk",
    "shoegaze",
    "techno",
    "house",
    "trap",
    "drill",
    "jazz",
    "soul",
    "funk",
    "metal",
    "punk",
    "ambient",
    "dub",
    "grime",
    "bossa",
    "highlife",
    "cumbia",
    "synth",
    "emo",
    "garage",
    "disco",
    "bluegrass",
    "reggaeton",
    "afrobeats",
]
_GENRE_MODIFIERS = ["dream", "neo", "dark", "lo-fi", "nu", "deep", "post", "alt", "chamber", "acid"]
_POPULAR_GENRES = ("pop", "dance pop", "hip hop", "rap", "edm")


def spotify_id(*parts: object) -> str:
    """A stable 22-character base62 id, shaped like Spotify's."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=17).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(22):
        number, rest = divmod(number, 62)
        chars.append(_ALPHABET[rest])
    return "".join(chars)


def _title(rng: random.Random) -> str:
    return f"{rng.choice(_WORDS).title()} {rng.choice(_NOUNS).title()}"


@functools.lru_cache(maxsize=8)
def catalogue(spec: PopulationSpec) -> Catalogue:
    """The shared catalogue; built once per spec (about 0.1 s for the defaults)."""
    rng = random.Random(f"catalogue:{spec.seed}")
    genre_names = [
        f"{modifier} {root}" for root, modifier in itertools.product(_GENRE_ROOTS, _GENRE_MODIFIERS)
    ]
    rng.shuffle(genre_names)
    own = spec.genres_per_community
    needed = spec.communities * own
    while len(genre_names) < needed:
        genre_names.append(
            f"{rng.choice(_GENRE_MODIFIERS)} {rng.choice(_GENRE_ROOTS)} {len(genre_names)}"
        )
    community_genres = [genre_names[c * own : (c + 1) * own] for c in range(spec.communities)]
    # the last genre of each community is also one of the next community's
    for c in range(spec.communities):
        community_genres[c] = [
            *community_genres[c],
            community_genres[(c + 1) % spec.communities][0],
        ]
    tail_genres = genre_names[needed:] or genre_names

    artists: dict[str, Artist] = {}
    albums: dict[str, Album] = {}
    tracks: dict[str, Track] = {}
    tracks_by_artist: dict[str, tuple[str, ...]] = {}

    def add_artist(
        key: str, genres: tuple[str, ...], popularity: int, community: int | None
    ) -> str:
        artist_id = spotify_id(spec.seed, "artist", key)
        name = f"The {_title(rng)}" if rng.random() < 0.3 else _title(rng)
        followers = int(10 ** (2 + popularity / 20) * (0.5 + rng.random()))
        artists[artist_id] = Artist(artist_id, name, genres, popularity, followers, community)
        return artist_id

    community_artists = []
    for c in range(spec.communities):
        pool = community_genres[c]
        ids = []
        for k in range(spec.artists_per_community):
            genres = tuple(rng.sample(pool, rng.randint(1, min(3, len(pool)))))
            if rng.random() < 0.2:
                genres = (*genres, rng.choice(_POPULAR_GENRES))
            ids.append(add_artist(f"c{c}:{k}", genres, rng.randint(30, 75), c))
        community_artists.append(tuple(ids))
    popular = tuple(
        add_artist(f"p{k}", tuple(rng.sample(_POPULAR_GENRES, 2)), rng.randint(80, 100), None)
        for k in range(spec.popular_artists)
    )
    tail = tuple(
        add_artist(f"t{k}", (rng.choice(tail_genres),), rng.randint(0, 35), None)
        for k in range(spec.long_tail_artists)
    )

    for artist in list(artists.values()):
        peers = community_artists[artist.community] if artist.community is not None else ()
        own_tracks = []
        for k in range(spec.tracks_per_artist):
            album_no = k // 4
            album_id = spotify_id(spec.seed, "album", artist.id, album_no)
            if album_id not in albums:
                year = 1990 + rng.randint(0, 35)
                albums[album_id] = Album(album_id, _title(rng), artist.id, f"{year}-01-01")
            # some community tracks feature a peer, as real collaborations do
            featured = (rng.choice(peers),) if peers and rng.random() < 0.15 else ()
            track_id = spotify_id(spec.seed, "track", artist.id, k)
            tracks[track_id] = Track(
                id=track_id,
                name=_title(rng),
                artist_ids=(artist.id, *(a for a in featured if a != artist.id)),
                album_id=album_id,
                popularity=max(0, min(100, artist.popularity + rng.randint(-15, 10))),
                duration_ms=rng.randint(120_000, 300_000),
                track_number=k % 4 + 1,
            )
            own_tracks.append(track_id)
        tracks_by_artist[artist.id] = tuple(own_tracks)
    return Catalogue(
        artists=artists,
        albums=albums,
        tracks=tracks,
        tracks_by_artist=tracks_by_artist,
        community_artists=tuple(community_artists),
        popular_artists=popular,
        tail_artists=tail,
        top_artists={
            a.id: TopArtist(id=a.id, name=a.name, genres=a.genres) for a in artists.values()
        },
        top_tracks={
            t.id: TopTrack(id=t.id, name=t.name, artist_ids=t.artist_ids) for t in tracks.values()
        },
    )


def user_id(index: int) -> str:
    return f"listener{index:06d}"


def user_index(user: str) -> int | None:
    """The index of a :func:`user_id`, or None if it is not one."""
    if not user.startswith("listener"):
        return None
    digits = user.removeprefix("listener")
    return int(digits) if digits.isdigit() else None


def _seed(spec: PopulationSpec, index: int) -> int:
    # integer seeds are cheaper than strings and distinct per (seed, index)
    return spec.seed * 10_000_019 + index


def community_of(spec: PopulationSpec, index: int) -> int:
    return random.Random(_seed(spec, index)).randrange(spec.communities)


@functools.lru_cache(maxsize=64)
def _zipf_cumulative(n: int) -> tuple[float, ...]:
    return tuple(itertools.accumulate(1.0 / (k + 1) ** 0.8 for k in range(n)))


def _zipf_sample(rng: random.Random, items: tuple[str, ...], count: int) -> list[str]:
    """``count`` distinct items, earlier ones likelier; plenty of draws for small counts."""
    cumulative = _zipf_cumulative(len(items))
    total = cumulative[-1]
    chosen: dict[str, None] = {}
    count = min(count, len(items))
    while len(chosen) < count:
        chosen[items[bisect.bisect_left(cumulative, rng.random() * total)]] = None
    return list(chosen)


def user_taste(
    spec: PopulationSpec, index: int, *, time_range: TimeRange = "medium_term"
) -> UserTaste:
    """User ``index``'s ranked top artists and tracks for a time range.

    The three time ranges draw from the same per-user candidate list with different noise,
    so they overlap but differ, as Spotify's do.
    """
    cat = catalogue(spec)
    rng = random.Random(_seed(spec, index))
    community = rng.randrange(spec.communities)
    size = rng.randint(8, 35)
    # listeners differ in how niche they are; some are almost all mainstream
    niche = min(0.9, spec.community_share * (0.4 + 1.2 * rng.random()))
    n_community = max(1, round(size * niche * 1.3))
    n_neighbour = round(n_community * spec.neighbour_share)
    n_popular = round(size * spec.popular_share * 1.3)
    n_tail = max(1, round(size * max(0.05, 1 - niche - spec.popular_share) * 1.3))
    # a per-user permutation of the community pool, so users differ in which artists they love
    pool = list(cat.community_artists[community])
    rng.shuffle(pool)
    neighbour = cat.community_artists[(community + 1) % spec.communities]
    scored: list[tuple[float, str]] = []
    for artist_id in _zipf_sample(rng, tuple(pool), n_community - n_neighbour):
        scored.append((rng.random() + 0.2, artist_id))
    for artist_id in rng.sample(neighbour, min(n_neighbour, len(neighbour))):
        scored.append((rng.random(), artist_id))
    for artist_id in _zipf_sample(rng, cat.popular_artists, n_popular):
        scored.append((rng.random() + 0.4, artist_id))
    for artist_id in rng.sample(cat.tail_artists, min(n_tail, len(cat.tail_artists))):
        scored.append((rng.random(), artist_id))

    term_rng = random.Random(_seed(spec, index) * 4 + TIME_RANGES.index(time_range) + 1)
    jitter = {"short_term": 0.6, "medium_term": 0.0, "long_term": 0.3}[time_range]
    ranked = sorted(
        ((score + term_rng.random() * jitter, artist_id) for score, artist_id in scored),
        reverse=True,
    )
    top = [artist_id for _, artist_id in ranked[:size]]

    # tracks: a per-user candidate list, reranked per time range like the artists
    n_tracks = rng.randint(10, 50)
    track_scores: dict[str, float] = {}
    artist_cumulative = _zipf_cumulative(len(top))
    for _ in range(n_tracks * 3 // 2):
        if rng.random() < 0.1:
            source = pool[int(rng.random() * len(pool))]
        else:
            pick = bisect.bisect_left(artist_cumulative, rng.random() * artist_cumulative[-1])
            source = top[pick]
        candidates = cat.tracks_by_artist[source]
        track_id = candidates[int(len(candidates) * rng.random() ** 2)]
        track_scores[track_id] = track_scores.get(track_id, 0.0) + 1.0 + rng.random()
    ranked_tracks = sorted(
        ((score + term_rng.random() * jitter, t) for t, score in track_scores.items()),
        reverse=True,
    )
    track_ids = [t for _, t in ranked_tracks[:n_tracks]]

    artists = [cat.top_artists[artist_id] for artist_id in top]
    tracks = [cat.top_tracks[track_id] for track_id in track_ids]
    name_rng = random.Random(_seed(spec, index) * 4)
    return UserTaste(
        index=index,
        user_id=user_id(index),
        display_name=f"{name_rng.choice(_WORDS).title()} {name_rng.choice(_NOUNS).title()}",
        community=community,
        tracks=tracks,
        artists=artists,
    )
