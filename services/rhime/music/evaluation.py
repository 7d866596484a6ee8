"""Offline quality of a similarity measure on a population with planted communities.

For each query user, the top-k most similar other users are its recommendations; one is a
hit when it belongs to the query user's community. precision@k is the mean share of hits,
hit-rate@k the share of query users with at least one hit.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from rhime.music import similarity as sim
from rhime.music.population import PopulationSpec, TimeRange, user_taste
from rhime.music.taste import BUILDERS, Profile, ProfileBuilder, ranked_profile


@dataclasses.dataclass(frozen=True, slots=True)
class Quality:
    measure: str
    precision_at_k: float
    hit_rate_at_k: float
    queries: int
    k: int


@dataclasses.dataclass(frozen=True, slots=True)
class Labelled:
    """Profiles with the community each user was planted in; position is the user index."""

    profiles: list[Profile]
    communities: list[int]


def synthetic_profiles(
    *,
    spec: PopulationSpec,
    builder: ProfileBuilder = ranked_profile,
    time_range: TimeRange = "medium_term",
) -> Labelled:
    profiles = []
    communities = []
    for index in range(spec.users):
        taste = user_taste(spec, index, time_range=time_range)
        profiles.append(builder(tracks=taste.tracks, artists=taste.artists))
        communities.append(taste.community)
    return Labelled(profiles=profiles, communities=communities)


def score(
    *, communities: Sequence[int], recommendations: Mapping[int, Sequence[int]], k: int = 10
) -> tuple[float, float]:
    """(precision@k, hit-rate@k) of recommendations given as user index → ranked indices."""
    if not recommendations:
        return 0.0, 0.0
    precision = 0.0
    hits = 0
    for user, recommended in recommendations.items():
        same = sum(1 for other in recommended[:k] if communities[other] == communities[user])
        precision += same / k
        hits += same > 0
    return precision / len(recommendations), hits / len(recommendations)


def top_k(
    *, profiles: Sequence[Profile], user: int, similarity: sim.Similarity, k: int = 10
) -> list[int]:
    """Brute force: the k most similar other users, best first, ties by index."""
    mine = profiles[user]
    scored = (
        (-similarity(mine, theirs), other) for other, theirs in enumerate(profiles) if other != user
    )
    return [other for _, other in heapq.nsmallest(k, scored)]


def evaluate(
    *,
    labelled: Labelled,
    similarity: sim.Similarity,
    name: str,
    k: int = 10,
    queries: Sequence[int] | None = None,
) -> Quality:
    users = range(len(labelled.profiles)) if queries is None else queries
    recommendations = {
        user: top_k(profiles=labelled.profiles, user=user, similarity=similarity, k=k)
        for user in users
    }
    precision, hit_rate = score(
        communities=labelled.communities, recommendations=recommendations, k=k
    )
    return Quality(
        measure=name,
        precision_at_k=precision,
        hit_rate_at_k=hit_rate,
        queries=len(recommendations),
        k=k,
    )


def random_similarity(*, seed: int) -> sim.Similarity:
    """A broken measure for baselines: symmetric but unrelated to taste."""
    salt = random.Random(seed).getrandbits(32)

    def similarity(a: Profile, b: Profile) -> float:
        low, high = sorted((id(a), id(b)))
        return random.Random(hash((salt, low, high))).random()

    return similarity


def quality_table(
    *,
    spec: PopulationSpec,
    builder: str = "original",
    k: int = 10,
    queries: int | None = None,
    baseline: bool = True,
) -> list[Quality]:
    """Every measure (and a random baseline) on one synthetic population."""
    labelled = synthetic_profiles(spec=spec, builder=BUILDERS[builder])
    idf = sim.idf_from_frequencies(sim.document_frequencies(labelled.profiles))
    sample = None
    if queries is not None and queries < spec.users:
        sample = random.Random(spec.seed).sample(range(spec.users), queries)
    rows = []
    for name in sim.MEASURES:
        # each profile is prepared once (IDF, normalisation), then pairs are scored: the same
        # values as measure(name, idf=idf), much cheaper than preparing per pair
        prepared = Labelled(
            profiles=[sim.prepared(p, name=name, idf=idf) for p in labelled.profiles],
            communities=labelled.communities,
        )
        rows.append(
            evaluate(
                labelled=prepared, similarity=sim.scoring(name), name=name, k=k, queries=sample
            )
        )
    if baseline:
        rows.append(
            evaluate(
                labelled=labelled,
                similarity=random_similarity(seed=spec.seed),
                name="random (baseline)",
                k=k,
                queries=sample,
            )
        )
    return rows


def format_table(rows: Sequence[Quality]) -> str:
    k = rows[0].k if rows else 10
    width = max([len("measure"), *(len(row.measure) for row in rows)])
    lines = [
        f"{'measure':<{width}}  precision@{k}  hit-rate@{k}  queries",
        f"{'-' * width}  {'-' * (10 + len(str(k)))}  {'-' * (9 + len(str(k)))}  -------",
    ]
    for row in rows:
        lines.append(
            f"{row.measure:<{width}}  {row.precision_at_k:>{10 + len(str(k))}.3f}"
            f"  {row.hit_rate_at_k:>{9 + len(str(k))}.3f}  {row.queries:>7}"
        )
    return "\n".join(lines)


def print_quality_table(
    *,
    spec: PopulationSpec,
    builder: str = "original",
    k: int = 10,
    queries: int | None = None,
    file: TextIO | None = None,
) -> list[Quality]:
    rows = quality_table(spec=spec, builder=builder, k=k, queries=queries)
    print(format_table(rows), file=file or sys.stdout)
    return rows
