"""How well a measure finds a listener's real friends, with intervals.

For each query listener with at least one friend, every other listener is scored; friends
are the positives. Per query: AUC (the chance a friend outranks a non-friend, ties count
half), precision@k and hit@k. Each is averaged over queries, and a percentile bootstrap over
queries gives its 95% interval, so two measures can be told apart or not.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
import statistics
from collections.abc import Callable, Collection, Sequence

Scorer = Callable[[int, int], float]  # (query index, candidate index) -> score


@dataclasses.dataclass(frozen=True, slots=True)
class PerQuery:
    auc: list[float]
    precision: list[float]
    hit: list[float]


@dataclasses.dataclass(frozen=True, slots=True)
class Interval:
    mean: float
    low: float
    high: float

    def __format__(self, spec: str) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclasses.dataclass(frozen=True, slots=True)
class Quality:
    name: str
    auc: Interval
    precision_at_k: Interval
    hit_rate_at_k: Interval
    queries: int
    k: int


def auc_of(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Mann-Whitney AUC of one ranking; ties between a positive and a negative count half."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid = (i + j) / 2 + 1  # 1-based average rank of the tied run
        rank_sum += mid * sum(1 for t in range(i, j + 1) if positives[order[t]])
        i = j + 1
    pos = sum(positives)
    neg = len(positives) - pos
    if pos == 0 or neg == 0:
        return 0.5
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def per_query(
    *,
    users: int,
    friends: Sequence[frozenset[int]],
    queries: Sequence[int],
    score: Scorer,
    k: int = 10,
    tie_seed: int = 0,
    exclude: Sequence[Collection[int]] | None = None,
) -> PerQuery:
    """Score every other listener for each query; friendless queries are skipped.
    ``exclude[q]``, when given, are never candidates for ``q`` (friends it already has, when
    ``friends`` are the held-out ones)."""
    aucs, precisions, hits = [], [], []
    for q in queries:
        mine = friends[q]
        if not mine:
            continue
        skip = exclude[q] if exclude is not None else ()
        others = [v for v in range(users) if v != q and v not in skip]
        scores = [score(q, v) for v in others]
        positives = [v in mine for v in others]
        aucs.append(auc_of(scores, positives))
        # ties broken at random (seeded), so a constant measure scores chance, not index order
        tie = random.Random(tie_seed * 1_000_003 + q)
        keyed = [(s, tie.random(), v) for s, v in zip(scores, others, strict=True)]
        top = heapq.nlargest(k, keyed)
        found = sum(1 for _, _, v in top if v in mine)
        precisions.append(found / k)
        hits.append(1.0 if found else 0.0)
    return PerQuery(auc=aucs, precision=precisions, hit=hits)


def bootstrap(values: Sequence[float], *, seed: int, rounds: int = 1000) -> Interval:
    """Mean and 95% percentile interval of the mean, resampling queries."""
    if not values:
        return Interval(0.0, 0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(statistics.fmean(rng.choices(values, k=n)) for _ in range(rounds))
    return Interval(
        statistics.fmean(values), means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]
    )


def quality(
    *, name: str, results: PerQuery, k: int = 10, seed: int = 0, rounds: int = 1000
) -> Quality:
    return Quality(
        name=name,
        auc=bootstrap(results.auc, seed=seed, rounds=rounds),
        precision_at_k=bootstrap(results.precision, seed=seed, rounds=rounds),
        hit_rate_at_k=bootstrap(results.hit, seed=seed, rounds=rounds),
        queries=len(results.auc),
        k=k,
    )


def format_table(rows: Sequence[Quality], *, targets: Sequence[float] | None = None) -> str:
    """Rows with 95% intervals; ``targets`` (AUC, P@k, HR@k) are printed as a last line."""
    k = rows[0].k if rows else 10
    width = max([len("measure"), *(len(row.name) for row in rows)])
    cell = 22
    lines = [
        f"{'measure':<{width}}  {'AUC':<{cell}}  {f'P@{k}':<{cell}}  {f'HR@{k}':<{cell}}  queries"
    ]
    for row in rows:
        lines.append(
            f"{row.name:<{width}}  {row.auc:<{cell}}  {row.precision_at_k:<{cell}}"
            f"  {row.hit_rate_at_k:<{cell}}  {row.queries:>7}"
        )
    if targets is not None:
        auc, precision, hit = targets
        lines.append(
            f"{'target (real data)':<{width}}  {f'>= {auc}':<{cell}}  {f'>= {precision}':<{cell}}"
            f"  {f'>= {hit}':<{cell}}"
        )
    return "\n".join(lines)
