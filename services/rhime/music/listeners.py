"""A synthetic population that resembles real listeners, with friendship as ground truth.

The planted-community population (`population.py`) is too easy: almost every measure finds
the community. Real listeners differ in three ways this generator reproduces, calibrated to
statistics of a real data set of music listeners with their top-50 artists and friendships
(:data:`TARGETS`):

- artist popularity is Zipf-like: most artists are held by one listener, a few by a third;
- the friendship graph is heavy-tailed (many people with a few friends, a few with a hundred)
  and clustered (friends of friends are friends);
- taste homophily is weak: friends share more artists than strangers, but not many.

How: listeners belong to scenes of uneven size. Friendships are drawn with a degree-corrected
model, mostly inside a scene, then closed into triangles. Each listener's ranked top artists
are drawn without replacement from a mix of the global charts, their scene's artists, their
friends' favourites and artists nobody else lists; the draw order is the rank. Genres are
community tags of the artist, mostly from the artist's home scene. Profiles have no tracks,
as in the real data.

Everything is seeded and pure Python; the default size (1,892 listeners) builds in a few
seconds.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import random
import statistics
from collections.abc import Iterator, Sequence

from rhime.music.taste import TopArtist


@dataclasses.dataclass(frozen=True, slots=True)
class ListenerSpec:
    seed: int = 7
    users: int = 1892
    artists_per_user: int = 50
    scenes: int = 30
    scene_size_exponent: float = 1.25  # scene sizes ~ 1 / rank^this
    catalogue: int = 8946  # artists with a home scene (the unique ones come on top)
    catalogue_exponent: float = 0.65  # global chart popularity ~ 1 / rank^this
    scene_exponent: float = 1.167  # popularity inside a scene ~ 1 / rank^this
    # calibrated to TARGETS (a seeded search over these fields; bench/friends.py prints the check)
    # degree propensity: log-normal, then capped
    degree_median: float = 6.3
    degree_sigma: float = 1.35
    degree_cap: float = 110.0
    inside_scene: float = 0.854  # share of a listener's friendships inside their scene
    closure: float = 0.3  # per listener, chance of closing each open triangle round
    closure_rounds: int = 2
    # where a listener's artists come from (shares of draws; the rest is the scene)
    charts: float = 0.097
    from_friends: float = 0.1
    unique: float = 0.05
    mainstream_spread: float = 1.295  # listeners differ in how much they follow the charts
    unique_spread: float = 0.5  # ...and in how many artists nobody else lists
    genres_per_artist: tuple[int, int] = (1, 4)
    global_genre_share: float = 0.35  # of an artist's tags, those from the global genres


@dataclasses.dataclass(frozen=True, slots=True)
class Listeners:
    """Ranked top artists per listener (index = listener) and undirected friendships."""

    artists: list[list[TopArtist]]
    friends: list[frozenset[int]]
    scene: list[int]

    @property
    def users(self) -> int:
        return len(self.artists)

    def edges(self) -> list[tuple[int, int]]:
        return [(u, v) for u, mine in enumerate(self.friends) for v in sorted(mine) if u < v]


_GLOBAL_GENRES = (
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "hip-hop",
    "female vocalists",
    "dance",
    "metal",
    "80s",
    "soul",
    "experimental",
)


def _zipf_cumulative(count: int, exponent: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank + 1) ** exponent for rank in range(count)))


def _pick(rng: random.Random, cumulative: Sequence[float]) -> int:
    return min(bisect.bisect_left(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def _friendships(spec: ListenerSpec, rng: random.Random, scene: list[int]) -> list[set[int]]:
    n = spec.users
    mu = math.log(spec.degree_median)
    theta = [min(spec.degree_cap, rng.lognormvariate(mu, spec.degree_sigma)) for _ in range(n)]
    total = sum(theta)
    members: dict[int, list[int]] = {}
    for u, s in enumerate(scene):
        members.setdefault(s, []).append(u)
    scene_total = {s: sum(theta[u] for u in us) for s, us in members.items()}
    friends: list[set[int]] = [set() for _ in range(n)]
    # degree-corrected: expected friends of u inside its scene ~ inside * theta_u
    for us in members.values():
        mass = scene_total[scene[us[0]]]
        for i, u in enumerate(us):
            for v in us[i + 1 :]:
                if rng.random() < spec.inside_scene * theta[u] * theta[v] / mass:
                    friends[u].add(v)
                    friends[v].add(u)
    outside = 1.0 - spec.inside_scene
    expected = [outside * t for t in theta]
    cumulative = list(itertools.accumulate(theta))
    for u in range(n):
        # cross-scene ties: ~Poisson(expected/2) partners chosen by propensity, both ways
        for _ in range(_poisson(rng, expected[u] / 2)):
            v = min(bisect.bisect_left(cumulative, rng.random() * total), n - 1)
            if v != u and scene[v] != scene[u]:
                friends[u].add(v)
                friends[v].add(u)
    for _ in range(spec.closure_rounds):
        for u in rng.sample(range(n), n):
            if len(friends[u]) < 2 or rng.random() >= spec.closure:
                continue
            a, b = rng.sample(sorted(friends[u]), 2)
            friends[a].add(b)
            friends[b].add(a)
    return friends


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method; the means here are small
    limit = math.exp(-mean)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Sources:
    """Where listeners' artists are drawn from, shared by every listener's draw."""

    scene: list[int]
    friends: list[set[int]]
    scene_genres: list[list[str]]
    catalogue: list[TopArtist]  # global chart rank = index
    charts: list[float]
    by_scene: dict[int, list[int]]  # catalogue indices by home scene, chart order
    scene_charts: dict[int, list[float]]
    unique_ids: Iterator[int]  # numbers the artists nobody else lists


def generate(spec: ListenerSpec) -> Listeners:
    # one generator throughout: the order of the steps below is the order of draws
    rng = random.Random(f"listeners:{spec.seed}")
    scene_cumulative = _zipf_cumulative(spec.scenes, spec.scene_size_exponent)
    scene = [_pick(rng, scene_cumulative) for _ in range(spec.users)]
    friends = _friendships(spec, rng, scene)
    scene_genres = [[f"scene{s} {k}" for k in range(rng.randint(3, 6))] for s in range(spec.scenes)]
    catalogue, by_scene = _catalogue(
        rng, spec=spec, scene_cumulative=scene_cumulative, scene_genres=scene_genres
    )
    sources = _Sources(
        scene=scene,
        friends=friends,
        scene_genres=scene_genres,
        catalogue=catalogue,
        charts=_zipf_cumulative(spec.catalogue, spec.catalogue_exponent),
        by_scene=by_scene,
        scene_charts={
            s: _zipf_cumulative(len(ids), spec.scene_exponent) for s, ids in by_scene.items() if ids
        },
        unique_ids=itertools.count(),
    )
    # a first round without friends' favourites, so the second has some to pass on
    first = [
        _draw(rng, spec=spec, sources=sources, user=u, favourites=None) for u in range(spec.users)
    ]
    artists = [
        _draw(rng, spec=spec, sources=sources, user=u, favourites=first) for u in range(spec.users)
    ]
    return Listeners(artists=artists, friends=[frozenset(f) for f in friends], scene=scene)


def _catalogue(
    rng: random.Random,
    *,
    spec: ListenerSpec,
    scene_cumulative: Sequence[float],
    scene_genres: list[list[str]],
) -> tuple[list[TopArtist], dict[int, list[int]]]:
    """The artists in global chart order, each with a home scene and tags; and each scene's
    artists (their catalogue indices)."""
    catalogue: list[TopArtist] = []
    by_scene: dict[int, list[int]] = {s: [] for s in range(spec.scenes)}
    low, high = spec.genres_per_artist
    for a in range(spec.catalogue):
        s = _pick(rng, scene_cumulative)
        tags = []
        for _ in range(rng.randint(low, high)):
            pool = _GLOBAL_GENRES if rng.random() < spec.global_genre_share else scene_genres[s]
            tags.append(rng.choice(pool))
        catalogue.append(TopArtist(id=f"a{a}", name=f"Artist {a}", genres=_dedupe(tags)))
        by_scene[s].append(a)
    return catalogue, by_scene


def _draw(
    rng: random.Random,
    *,
    spec: ListenerSpec,
    sources: _Sources,
    user: int,
    favourites: Sequence[Sequence[TopArtist]] | None,
) -> list[TopArtist]:
    """One listener's ranked top artists: distinct draws, in the order drawn."""
    chosen: dict[str, TopArtist] = {}
    mainstream = spec.charts * math.exp(rng.gauss(0.0, spec.mainstream_spread))
    unique = spec.unique * math.exp(rng.gauss(0.0, spec.unique_spread))
    mates = sorted(sources.friends[user])
    attempts = 0
    # bounded: a listener with few sources to draw from may never reach the full count
    while len(chosen) < spec.artists_per_user and attempts < 20 * spec.artists_per_user:
        attempts += 1
        artist = _draw_one(
            rng,
            spec=spec,
            sources=sources,
            user=user,
            favourites=favourites,
            mates=mates,
            unique=unique,
            mainstream=mainstream,
        )
        if artist is not None:
            chosen.setdefault(artist.id, artist)
    return list(chosen.values())


def _draw_one(
    rng: random.Random,
    *,
    spec: ListenerSpec,
    sources: _Sources,
    user: int,
    favourites: Sequence[Sequence[TopArtist]] | None,
    mates: list[int],
    unique: float,
    mainstream: float,
) -> TopArtist | None:
    """One draw from a friend's favourites, nowhere else, the charts or the user's scene (by
    the shares); None when the source drawn has nothing to give."""
    roll = rng.random()
    if favourites is not None and mates and roll < spec.from_friends:
        theirs = favourites[rng.choice(mates)]
        if not theirs:
            return None
        # friends pass on their favourites more than the 50th
        return theirs[int(len(theirs) * rng.random() ** 2)]
    if roll < spec.from_friends + unique:
        k = next(sources.unique_ids)
        return TopArtist(
            id=f"u{k}",
            name=f"Unsigned {k}",
            genres=(rng.choice(sources.scene_genres[sources.scene[user]]),),
        )
    if roll < spec.from_friends + unique + mainstream:
        return sources.catalogue[_pick(rng, sources.charts)]
    ids = sources.by_scene[sources.scene[user]]
    if not ids:
        return None
    return sources.catalogue[ids[_pick(rng, sources.scene_charts[sources.scene[user]])]]


def _dedupe(tags: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tags))


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    name: str
    value: float
    tolerance: float  # absolute

    def holds(self, measured: float) -> bool:
        return abs(measured - self.value) <= self.tolerance


# statistics of the real data set; tolerances are what a generator can promise
TARGETS: tuple[Target, ...] = (
    Target("artists per profile", 50.0, 3.0),
    Target("share of artists held by one listener", 0.61, 0.05),
    Target("share of entries in the top 1% of artists", 0.32, 0.05),
    # the head artist is one big scene's favourite: 0.35-0.46 across seeds, so a wider band
    Target("share of profiles with the top artist", 0.32, 0.15),
    Target("mean friends", 13.4, 1.5),
    Target("median friends", 6.0, 1.5),
    Target("most friends", 119.0, 35.0),
    Target("share of friend pairs with a common friend", 0.81, 0.05),
    Target("friends' artist Jaccard", 0.10, 0.015),
    Target("share of friends with no common artist", 0.08, 0.03),
    Target("random pairs' artist Jaccard", 0.024, 0.006),
    Target("share of random pairs with no common artist", 0.44, 0.07),
)


def _jaccard(a: set[str], b: set[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def measure_statistics(
    listeners: Listeners, *, seed: int = 0, pairs: int = 20_000
) -> dict[str, float]:
    """The :data:`TARGETS` statistics of a population, by name."""
    sets = [{a.id for a in artists} for artists in listeners.artists]
    holders: dict[str, int] = {}
    for s in sets:
        for a in s:
            holders[a] = holders.get(a, 0) + 1
    counts = sorted(holders.values(), reverse=True)
    entries = sum(counts)
    top = max(1, round(len(counts) / 100))
    degrees = [len(f) for f in listeners.friends]
    edges = listeners.edges()
    closed = sum(1 for u, v in edges if listeners.friends[u] & listeners.friends[v])
    friend_j = [_jaccard(sets[u], sets[v]) for u, v in edges]
    rng = random.Random(seed)
    random_j: list[float] = []
    while len(random_j) < pairs:
        u, v = rng.randrange(listeners.users), rng.randrange(listeners.users)
        if u != v:
            random_j.append(_jaccard(sets[u], sets[v]))
    return {
        "artists per profile": entries / max(1, listeners.users),
        "share of artists held by one listener": sum(c == 1 for c in counts) / len(counts),
        "share of entries in the top 1% of artists": sum(counts[:top]) / entries,
        "share of profiles with the top artist": counts[0] / listeners.users,
        "mean friends": statistics.fmean(degrees),
        "median friends": statistics.median(degrees),
        "most friends": float(max(degrees)),
        "share of friend pairs with a common friend": closed / max(1, len(edges)),
        "friends' artist Jaccard": statistics.fmean(friend_j) if friend_j else 0.0,
        "share of friends with no common artist": (
            sum(j == 0 for j in friend_j) / len(friend_j) if friend_j else 0.0
        ),
        "random pairs' artist Jaccard": statistics.fmean(random_j),
        "share of random pairs with no common artist": sum(j == 0 for j in random_j) / pairs,
    }


def check(measured: dict[str, float]) -> list[tuple[Target, float, bool]]:
    """Each target with the measured value and whether it is within tolerance."""
    return [(t, measured[t.name], t.holds(measured[t.name])) for t in TARGETS]


def format_check(rows: Sequence[tuple[Target, float, bool]]) -> str:
    width = max(len(t.name) for t, _, _ in rows)
    lines = [f"{'statistic':<{width}}  {'measured':>9}  {'target':>14}  ok"]
    for target, value, ok in rows:
        wanted = f"{target.value:g} ± {target.tolerance:g}"
        lines.append(
            f"{target.name:<{width}}  {value:>9.3f}  {wanted:>14}  {'yes' if ok else 'NO'}"
        )
    return "\n".join(lines)
