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
from collections.abc import Iterable
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
    # one generator for the whole catalogue: the order of the steps below is the order of draws
    rng = random.Random(f"catalogue:{spec.seed}")
    community_genres, tail_genres = _genres(rng, spec=spec)
    communities = [
        _community_artists(rng, spec=spec, community=c, genres=community_genres[c])
        for c in range(spec.communities)
    ]
    popular = _popular_artists(rng, spec=spec)
    tail = _tail_artists(rng, spec=spec, genres=tail_genres)
    artists = {a.id: a for a in itertools.chain(*communities, popular, tail)}
    community_artists = tuple(tuple(a.id for a in group) for group in communities)
    albums, tracks, tracks_by_artist = _discography(
        rng, spec=spec, artists=artists, community_artists=community_artists
    )
    return Catalogue(
        artists=artists,
        albums=albums,
        tracks=tracks,
        tracks_by_artist=tracks_by_artist,
        community_artists=community_artists,
        popular_artists=tuple(a.id for a in popular),
        tail_artists=tuple(a.id for a in tail),
        top_artists={
            a.id: TopArtist(id=a.id, name=a.name, genres=a.genres) for a in artists.values()
        },
        top_tracks={
            t.id: TopTrack(id=t.id, name=t.name, artist_ids=t.artist_ids) for t in tracks.values()
        },
    )


def _genres(rng: random.Random, *, spec: PopulationSpec) -> tuple[list[list[str]], list[str]]:
    """Each community's genres, and the genres left over for the long tail."""
    genre_names = [
        f"{modifier} {root}" for root, modifier in itertools.product(_GENRE_ROOTS, _GENRE_MODIFIERS)
    ]
    rng.shuffle(genre_names)
    own = spec.genres_per_community
    needed = spec.communities * own
    # more communities than the word lists can name: numbered genres make up the rest
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
    return community_genres, genre_names[needed:] or genre_names


def _community_artists(
    rng: random.Random, *, spec: PopulationSpec, community: int, genres: list[str]
) -> list[Artist]:
    made = []
    for k in range(spec.artists_per_community):
        tags = tuple(rng.sample(genres, rng.randint(1, min(3, len(genres)))))
        # a few community artists also carry a mainstream tag
        if rng.random() < 0.2:
            tags = (*tags, rng.choice(_POPULAR_GENRES))
        made.append(
            _new_artist(
                rng,
                spec=spec,
                key=f"c{community}:{k}",
                genres=tags,
                popularity=rng.randint(30, 75),
                community=community,
            )
        )
    return made


def _popular_artists(rng: random.Random, *, spec: PopulationSpec) -> list[Artist]:
    """The globally popular artists almost everyone lists, with mainstream genres."""
    return [
        _new_artist(
            rng,
            spec=spec,
            key=f"p{k}",
            genres=tuple(rng.sample(_POPULAR_GENRES, 2)),
            popularity=rng.randint(80, 100),
            community=None,
        )
        for k in range(spec.popular_artists)
    ]


def _tail_artists(rng: random.Random, *, spec: PopulationSpec, genres: list[str]) -> list[Artist]:
    """The long tail: obscure artists of one genre each, in no community."""
    return [
        _new_artist(
            rng,
            spec=spec,
            key=f"t{k}",
            genres=(rng.choice(genres),),
            popularity=rng.randint(0, 35),
            community=None,
        )
        for k in range(spec.long_tail_artists)
    ]


def _new_artist(
    rng: random.Random,
    *,
    spec: PopulationSpec,
    key: str,
    genres: tuple[str, ...],
    popularity: int,
    community: int | None,
) -> Artist:
    artist_id = spotify_id(spec.seed, "artist", key)
    name = f"The {_title(rng)}" if rng.random() < 0.3 else _title(rng)
    followers = int(10 ** (2 + popularity / 20) * (0.5 + rng.random()))
    return Artist(artist_id, name, genres, popularity, followers, community)


def _discography(
    rng: random.Random,
    *,
    spec: PopulationSpec,
    artists: dict[str, Artist],
    community_artists: tuple[tuple[str, ...], ...],
) -> tuple[dict[str, Album], dict[str, Track], dict[str, tuple[str, ...]]]:
    """Every artist's albums and tracks: the albums, the tracks, and each artist's track ids."""
    albums: dict[str, Album] = {}
    tracks: dict[str, Track] = {}
    tracks_by_artist: dict[str, tuple[str, ...]] = {}
    for artist in artists.values():
        peers = community_artists[artist.community] if artist.community is not None else ()
        own = _artist_tracks(rng, spec=spec, artist=artist, peers=peers, albums=albums)
        tracks.update((track.id, track) for track in own)
        tracks_by_artist[artist.id] = tuple(track.id for track in own)
    return albums, tracks, tracks_by_artist


def _artist_tracks(
    rng: random.Random,
    *,
    spec: PopulationSpec,
    artist: Artist,
    peers: tuple[str, ...],
    albums: dict[str, Album],
) -> list[Track]:
    """The artist's tracks, four to an album; adds the albums to `albums`."""
    made = []
    for k in range(spec.tracks_per_artist):
        album_id = spotify_id(spec.seed, "album", artist.id, k // 4)
        if album_id not in albums:
            year = 1990 + rng.randint(0, 35)
            albums[album_id] = Album(album_id, _title(rng), artist.id, f"{year}-01-01")
        made.append(
            _new_track(rng, spec=spec, artist=artist, number=k, album_id=album_id, peers=peers)
        )
    return made


def _new_track(
    rng: random.Random,
    *,
    spec: PopulationSpec,
    artist: Artist,
    number: int,
    album_id: str,
    peers: tuple[str, ...],
) -> Track:
    # some community tracks feature a peer, as real collaborations do
    featured = (rng.choice(peers),) if peers and rng.random() < 0.15 else ()
    track_id = spotify_id(spec.seed, "track", artist.id, number)
    return Track(
        id=track_id,
        name=_title(rng),
        artist_ids=(artist.id, *(a for a in featured if a != artist.id)),
        album_id=album_id,
        popularity=max(0, min(100, artist.popularity + rng.randint(-15, 10))),
        duration_ms=rng.randint(120_000, 300_000),
        track_number=number % 4 + 1,
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
    # the user's own draws (same in every time range) come from `rng`, in this order; the
    # time range's noise from `term_rng`
    rng = random.Random(_seed(spec, index))
    community = rng.randrange(spec.communities)
    size = rng.randint(8, 35)
    pool, scored = _candidate_artists(rng, spec=spec, cat=cat, community=community, size=size)
    term_rng = random.Random(_seed(spec, index) * 4 + TIME_RANGES.index(time_range) + 1)
    jitter = {"short_term": 0.6, "medium_term": 0.0, "long_term": 0.3}[time_range]
    top = _rerank(scored, rng=term_rng, jitter=jitter)[:size]
    # tracks: a per-user candidate list, reranked per time range like the artists
    n_tracks = rng.randint(10, 50)
    track_scores = _candidate_tracks(rng, cat=cat, top=top, pool=pool, draws=n_tracks * 3 // 2)
    ranked_tracks = _rerank(
        ((score, t) for t, score in track_scores.items()), rng=term_rng, jitter=jitter
    )
    return UserTaste(
        index=index,
        user_id=user_id(index),
        display_name=_display_name(spec, index),
        community=community,
        tracks=[cat.top_tracks[track_id] for track_id in ranked_tracks[:n_tracks]],
        artists=[cat.top_artists[artist_id] for artist_id in top],
    )


def _candidate_artists(
    rng: random.Random, *, spec: PopulationSpec, cat: Catalogue, community: int, size: int
) -> tuple[list[str], list[tuple[float, str]]]:
    """The user's shuffled community pool, and their candidate artists with base scores."""
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
    return pool, scored


def _rerank(scored: Iterable[tuple[float, str]], *, rng: random.Random, jitter: float) -> list[str]:
    """Ids best first, each score moved by up to `jitter` (one draw per id, in input order)."""
    ranked = sorted(
        ((score + rng.random() * jitter, item_id) for score, item_id in scored), reverse=True
    )
    return [item_id for _, item_id in ranked]


def _candidate_tracks(
    rng: random.Random, *, cat: Catalogue, top: list[str], pool: list[str], draws: int
) -> dict[str, float]:
    """Tracks of the user's top artists (mostly the higher ranked, now and then one of the
    community pool), scored by how often they were drawn."""
    track_scores: dict[str, float] = {}
    artist_cumulative = _zipf_cumulative(len(top))
    for _ in range(draws):
        if rng.random() < 0.1:
            source = pool[int(rng.random() * len(pool))]
        else:
            pick = bisect.bisect_left(artist_cumulative, rng.random() * artist_cumulative[-1])
            source = top[pick]
        candidates = cat.tracks_by_artist[source]
        # an artist's earlier tracks are the likelier
        track_id = candidates[int(len(candidates) * rng.random() ** 2)]
        track_scores[track_id] = track_scores.get(track_id, 0.0) + 1.0 + rng.random()
    return track_scores


def _display_name(spec: PopulationSpec, index: int) -> str:
    # its own generator, so names stay put whatever the taste draws
    name_rng = random.Random(_seed(spec, index) * 4)
    return f"{name_rng.choice(_WORDS).title()} {name_rng.choice(_NOUNS).title()}"
