"""Similarity between two taste profiles, and the explanation shown with a recommendation.

Every measure is symmetric and returns a float in [0, 1]; empty against anything is 0.
Measures are looked up by name with :func:`measure`; :data:`DEFAULT` is the one the
service uses (chosen by measurement, see docs/recommendations.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping

from rhime.music.taste import CATEGORIES, Category, Profile

Weights = Mapping[str, float]
Similarity = Callable[[Profile, Profile], float]

# The original's blend (§13): 0.4 tracks, 0.3 artists, 0.3 genres.
BLEND: dict[Category, float] = {"tracks": 0.4, "artists": 0.3, "genres": 0.3}


def weighted_jaccard(a: Weights, b: Weights) -> float:
    """Σmin / Σmax over the union of keys; 0/0 is 0."""
    if len(a) > len(b):
        a, b = b, a
    common_min = 0.0
    for key, wa in a.items():
        wb = b.get(key)
        if wb is not None:
            common_min += wa if wa < wb else wb
    total = sum(a.values()) + sum(b.values()) - common_min
    if total <= 0.0:
        return 0.0
    return min(1.0, common_min / total)


def cosine(a: Weights, b: Weights) -> float:
    """Cosine of two non-negative sparse vectors; 0 when either is zero."""
    if len(a) > len(b):
        a, b = b, a
    dot = 0.0
    for key, wa in a.items():
        wb = b.get(key)
        if wb is not None:
            dot += wa * wb
    if dot <= 0.0:
        return 0.0
    norm = math.sqrt(sum(w * w for w in a.values()) * sum(w * w for w in b.values()))
    return min(1.0, dot / norm)


@dataclasses.dataclass(frozen=True, slots=True)
class DocumentFrequencies:
    """How many users' profiles contain each item, per category, out of ``users``."""

    users: int
    tracks: dict[str, int]
    artists: dict[str, int]
    genres: dict[str, int]

    def of(self, category: Category) -> dict[str, int]:
        return {"tracks": self.tracks, "artists": self.artists, "genres": self.genres}[category]


def document_frequencies(profiles: Iterable[Profile]) -> DocumentFrequencies:
    counts: dict[Category, dict[str, int]] = {c: {} for c in CATEGORIES}
    users = 0
    for profile in profiles:
        users += 1
        for category in CATEGORIES:
            table = counts[category]
            for key in profile.weights(category):
                table[key] = table.get(key, 0) + 1
    return DocumentFrequencies(
        users=users, tracks=counts["tracks"], artists=counts["artists"], genres=counts["genres"]
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Idf:
    """Inverse document frequency per item; items missing from a table count as seen once."""

    users: int
    tracks: dict[str, float]
    artists: dict[str, float]
    genres: dict[str, float]

    def table(self, category: Category) -> dict[str, float]:
        return {"tracks": self.tracks, "artists": self.artists, "genres": self.genres}[category]

    @property
    def unseen(self) -> float:
        return idf_value(users=self.users, frequency=1)


def idf_value(*, users: int, frequency: int) -> float:
    # ln(1 + N/df): an item everyone has keeps ln 2 rather than 0, so identical profiles
    # stay identical; an item only one user in 100K has weighs about 17 times more.
    return math.log1p(max(users, 1) / max(frequency, 1))


def idf_from_frequencies(frequencies: DocumentFrequencies) -> Idf:
    def table(counts: Mapping[str, int]) -> dict[str, float]:
        return {key: idf_value(users=frequencies.users, frequency=df) for key, df in counts.items()}

    return Idf(
        users=frequencies.users,
        tracks=table(frequencies.tracks),
        artists=table(frequencies.artists),
        genres=table(frequencies.genres),
    )


def reweigh(weights: Weights, idf: Mapping[str, float], unseen: float) -> dict[str, float]:
    return {key: w * idf.get(key, unseen) for key, w in weights.items()}


def reweigh_profile(profile: Profile, *, idf: Idf) -> Profile:
    """The profile with every weight multiplied by its IDF.

    ``m_idf(a, b) == m(reweigh_profile(a), reweigh_profile(b))`` for m in jaccard and cosine,
    so a batch can reweigh each profile once instead of once per pair.
    """
    unseen = idf.unseen
    return Profile(
        tracks=reweigh(profile.tracks, idf.tracks, unseen),
        artists=reweigh(profile.artists, idf.artists, unseen),
        genres=reweigh(profile.genres, idf.genres, unseen),
    )


def _blend(a: Profile, b: Profile, per_category: Callable[[Category], float]) -> float:
    if a.is_empty() or b.is_empty():
        return 0.0
    return min(1.0, sum(share * per_category(c) for c, share in BLEND.items()))


def jaccard_similarity(a: Profile, b: Profile) -> float:
    """The original measure: per-category weighted Jaccard, blended 0.4/0.3/0.3."""
    return _blend(a, b, lambda c: weighted_jaccard(a.weights(c), b.weights(c)))


def cosine_similarity(a: Profile, b: Profile, *, idf: Idf | None = None) -> float:
    """Per-category cosine, blended like the original; with ``idf``, items are reweighed first."""
    if idf is None:
        return _blend(a, b, lambda c: cosine(a.weights(c), b.weights(c)))
    unseen = idf.unseen
    return _blend(
        a,
        b,
        lambda c: cosine(
            reweigh(a.weights(c), idf.table(c), unseen),
            reweigh(b.weights(c), idf.table(c), unseen),
        ),
    )


def idf_jaccard_similarity(a: Profile, b: Profile, *, idf: Idf) -> float:
    """The original Jaccard over IDF-reweighed items."""
    unseen = idf.unseen
    return _blend(
        a,
        b,
        lambda c: weighted_jaccard(
            reweigh(a.weights(c), idf.table(c), unseen),
            reweigh(b.weights(c), idf.table(c), unseen),
        ),
    )


def per_category(
    a: Profile, b: Profile, *, name: str, idf: Idf | None = None
) -> dict[Category, float]:
    """The per-category scores the named measure blends."""
    use_idf = name in NEEDS_IDF
    if use_idf and idf is None:
        raise ValueError(f"measure {name!r} needs an IDF table")
    scores: dict[Category, float] = {}
    for c in CATEGORIES:
        wa, wb = a.weights(c), b.weights(c)
        if use_idf and idf is not None:
            wa, wb = reweigh(wa, idf.table(c), idf.unseen), reweigh(wb, idf.table(c), idf.unseen)
        scores[c] = weighted_jaccard(wa, wb) if "jaccard" in name else cosine(wa, wb)
    return scores


MEASURES: tuple[str, ...] = ("jaccard", "cosine", "jaccard_idf", "cosine_idf")
NEEDS_IDF: frozenset[str] = frozenset({"jaccard_idf", "cosine_idf"})


def without_idf(name: str) -> str:
    """The plain measure an IDF measure applies to reweighed profiles."""
    return name.removesuffix("_idf")


# chosen by measurement (bench/recommend.py, docs/recommendations.md)
DEFAULT = "jaccard_idf"


def measure(name: str = DEFAULT, *, idf: Idf | None = None) -> Similarity:
    """The named measure as a two-argument function; IDF measures need ``idf``."""
    if name in NEEDS_IDF and idf is None:
        raise ValueError(f"measure {name!r} needs an IDF table")
    if name == "jaccard":
        return jaccard_similarity
    if name == "cosine":
        return cosine_similarity
    if name == "jaccard_idf" and idf is not None:
        return lambda a, b: idf_jaccard_similarity(a, b, idf=idf)
    if name == "cosine_idf" and idf is not None:
        return lambda a, b: cosine_similarity(a, b, idf=idf)
    raise ValueError(f"unknown measure {name!r}; known: {', '.join(MEASURES)}")


@dataclasses.dataclass(frozen=True, slots=True)
class Explanation:
    """Why two users match: shared items by combined weight, and each category's score."""

    similarity: float
    common_tracks: list[str]
    common_artists: list[str]
    common_genres: list[str]
    breakdown: dict[Category, float]


def common_items(a: Weights, b: Weights) -> list[str]:
    """Keys in both, heaviest combined weight first (ties by key, for stable output)."""
    shared = a.keys() & b.keys()
    return sorted(shared, key=lambda k: (-(a[k] + b[k]), k))


def explain(a: Profile, b: Profile, *, name: str = DEFAULT, idf: Idf | None = None) -> Explanation:
    return Explanation(
        similarity=measure(name, idf=idf)(a, b),
        common_tracks=common_items(a.tracks, b.tracks),
        common_artists=common_items(a.artists, b.artists),
        common_genres=common_items(a.genres, b.genres),
        breakdown=per_category(a, b, name=name, idf=idf),
    )
