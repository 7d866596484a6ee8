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
    if name in TUNED:
        tuning = TUNED[name]
        pa, pb = prepare(a, tuning=tuning, idf=idf), prepare(b, tuning=tuning, idf=idf)
        return {c: min(1.0, _dot(pa.weights(c), pb.weights(c))) for c in CATEGORIES}
    scores: dict[Category, float] = {}
    for c in CATEGORIES:
        wa, wb = a.weights(c), b.weights(c)
        if use_idf and idf is not None:
            wa, wb = reweigh(wa, idf.table(c), idf.unseen), reweigh(wb, idf.table(c), idf.unseen)
        scores[c] = weighted_jaccard(wa, wb) if "jaccard" in name else cosine(wa, wb)
    return scores


@dataclasses.dataclass(frozen=True, slots=True)
class Tuning:
    """A cosine measure over prepared vectors: IDF to a power, BM25-style saturation, a blend.

    Preparing a profile (once, :func:`prepare`) scales each category to a unit vector, so
    scoring a pair is a blended dot product (:func:`blended_dot`).
    """

    blend: tuple[tuple[Category, float], ...]
    idf_power: float = 0.0  # 0: no IDF; 1: weight x IDF; 0.5 dampens it
    # w -> w (k + 1) / (w + k) on weights scaled to the category's heaviest: caps what a
    # genre summed over many artists can add (BM25's term-frequency saturation)
    saturation: float | None = None

    def share(self, category: Category) -> float:
        return dict(self.blend).get(category, 0.0)


def _prepare_weights(
    weights: Weights,
    *,
    tuning: Tuning,
    idf: Mapping[str, float] | None,
    unseen: float,
) -> dict[str, float]:
    if not weights:
        return {}
    out = dict(weights)
    k = tuning.saturation
    if k is not None:
        heaviest = max(out.values())
        if heaviest > 0:
            out = {key: (w / heaviest) * (k + 1) / (w / heaviest + k) for key, w in out.items()}
    if tuning.idf_power and idf is not None:
        power = tuning.idf_power
        out = {key: w * idf.get(key, unseen) ** power for key, w in out.items()}
    norm = math.sqrt(sum(w * w for w in out.values()))
    if norm <= 0.0:
        return {}
    return {key: w / norm for key, w in out.items() if w > 0}


def prepare(profile: Profile, *, tuning: Tuning, idf: Idf | None = None) -> Profile:
    """The profile as unit vectors per category, ready for :func:`blended_dot`."""
    unseen = idf.unseen if idf is not None else 1.0

    def one(category: Category) -> dict[str, float]:
        table = idf.table(category) if idf is not None else None
        return _prepare_weights(profile.weights(category), tuning=tuning, idf=table, unseen=unseen)

    return Profile(tracks=one("tracks"), artists=one("artists"), genres=one("genres"))


def _dot(a: Weights, b: Weights) -> float:
    if len(a) > len(b):
        a, b = b, a
    total = 0.0
    for key, wa in a.items():
        wb = b.get(key)
        if wb is not None:
            total += wa * wb
    return total


def blended_dot(a: Profile, b: Profile, *, tuning: Tuning) -> float:
    """The blended cosine of two prepared profiles."""
    total = 0.0
    for category, share in tuning.blend:
        total += share * _dot(a.weights(category), b.weights(category))
    return max(0.0, min(1.0, total))


# the taste measures: tracks keep the original's 0.4 (common tracks are strong evidence; the
# benchmark has none to measure them by); artists and genres split the rest 0.7 / 0.3, as
# measured best (docs/recommendations.md)
TASTE = Tuning(blend=(("tracks", 0.4), ("artists", 0.42), ("genres", 0.18)), idf_power=0.0)
TASTE_IDF = dataclasses.replace(TASTE, idf_power=1.0)

TUNED: dict[str, Tuning] = {"taste": TASTE, "taste_idf": TASTE_IDF}
MEASURES: tuple[str, ...] = ("jaccard", "cosine", "jaccard_idf", "cosine_idf", *TUNED)
NEEDS_IDF: frozenset[str] = frozenset(
    {"jaccard_idf", "cosine_idf", *(name for name, t in TUNED.items() if t.idf_power)}
)


def without_idf(name: str) -> str:
    """The plain measure an IDF measure applies to reweighed profiles."""
    return name.removesuffix("_idf")


# chosen by measurement (bench/friends.py, docs/recommendations.md): the measure, and the
# profile builder (taste.BUILDERS) the service builds every profile with
DEFAULT = "taste_idf"
BUILDER = "ranked"


def tuned_measure(tuning: Tuning, *, idf: Idf | None = None) -> Similarity:
    """A :class:`Tuning` as a two-argument measure over raw profiles."""

    def similarity(a: Profile, b: Profile) -> float:
        if a.is_empty() or b.is_empty():
            return 0.0
        return blended_dot(
            prepare(a, tuning=tuning, idf=idf), prepare(b, tuning=tuning, idf=idf), tuning=tuning
        )

    return similarity


def blend_of(name: str) -> dict[Category, float]:
    """The share of each category in the named measure (its score on identical profiles)."""
    return dict(TUNED[name].blend) if name in TUNED else dict(BLEND)


def prepared(profile: Profile, *, name: str = DEFAULT, idf: Idf | None = None) -> Profile:
    """The profile as :func:`scoring` takes it, computed once per profile.

    ``measure(name, idf=idf)(a, b) == scoring(name)(prepared(a, ...), prepared(b, ...))``.
    """
    if name in NEEDS_IDF and idf is None:
        raise ValueError(f"measure {name!r} needs an IDF table")
    if name in TUNED:
        tuning = TUNED[name]
        return prepare(profile, tuning=tuning, idf=idf if tuning.idf_power else None)
    if name in NEEDS_IDF and idf is not None:
        return reweigh_profile(profile, idf=idf)
    return profile


def scoring(name: str = DEFAULT) -> Similarity:
    """The named measure over :func:`prepared` profiles."""
    if name in TUNED:
        tuning = TUNED[name]
        return lambda a, b: blended_dot(a, b, tuning=tuning)
    return measure(without_idf(name))


def measure(name: str = DEFAULT, *, idf: Idf | None = None) -> Similarity:
    """The named measure as a two-argument function; IDF measures need ``idf``."""
    if name in NEEDS_IDF and idf is None:
        raise ValueError(f"measure {name!r} needs an IDF table")
    if name in TUNED:
        return tuned_measure(TUNED[name], idf=idf)
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
    return explain_prepared(
        prepared(a, name=name, idf=idf), prepared(b, name=name, idf=idf), name=name
    )


def explain_prepared(a: Profile, b: Profile, *, name: str = DEFAULT) -> Explanation:
    """The explanation of two :func:`prepared` profiles, as the service stores them.

    Common items come most telling first: for the cosine measures by their share of the dot
    product (what really raised the score), otherwise by combined weight.
    """
    score = scoring(name)
    if name in TUNED:
        order = common_by_contribution
        breakdown = {c: min(1.0, _dot(a.weights(c), b.weights(c))) for c in CATEGORIES}
    else:
        order = common_items
        breakdown = per_category(a, b, name=without_idf(name))
    return Explanation(
        similarity=score(a, b) if not (a.is_empty() or b.is_empty()) else 0.0,
        common_tracks=order(a.tracks, b.tracks),
        common_artists=order(a.artists, b.artists),
        common_genres=order(a.genres, b.genres),
        breakdown=breakdown,
    )


def common_by_contribution(a: Weights, b: Weights) -> list[str]:
    """Keys in both, largest product (share of the dot product) first, ties by key."""
    shared = a.keys() & b.keys()
    return sorted(shared, key=lambda k: (-(a[k] * b[k]), k))
