"""Held-out friendships: how well a scorer finds friends a listener has not followed yet.

For each query listener a share of their friendships (at least one) is hidden; the rest are
the people they already follow. Candidates are everyone but the listener and the friends
kept, as in the service (people one follows are never recommended); the hidden friends are
the hits. Only the query's own hidden edges leave the graph, so everyone else's friends stay
as they are: the graph signal sees exactly what the service would see before those follows.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence

from rhime.music import friendship as fr
from rhime.music import proximity as px


@dataclasses.dataclass(frozen=True, slots=True)
class HeldOut:
    """Per listener (index): the friends they already follow and the hidden ones. Listeners
    who are not queries keep every friend and hide none."""

    kept: list[frozenset[int]]
    hidden: list[frozenset[int]]


def hide(
    *, friends: Sequence[frozenset[int]], queries: Sequence[int], share: float, seed: int
) -> HeldOut:
    """Hide ``share`` of each query's friends (rounded, at least one); a query with a single
    friend keeps none and is a newcomer to the graph."""
    rng = random.Random(seed)
    kept = list(friends)
    hidden: list[frozenset[int]] = [frozenset()] * len(friends)
    for q in queries:
        mine = sorted(friends[q])
        if not mine:
            continue
        gone = frozenset(rng.sample(mine, max(1, round(share * len(mine)))))
        hidden[q] = gone
        kept[q] = frozenset(mine) - gone
    return HeldOut(kept=kept, hidden=hidden)


def closeness(
    *, query: int, held: HeldOut, following: Mapping[int, frozenset[int]]
) -> dict[int, float]:
    """Graph closeness of every candidate to ``query`` through the friends it kept.
    ``following`` is the whole graph: a query's hidden edges only leave its own list."""
    found = px.proximities(user=query, mine=held.kept[query], following=following)
    return {c: p.closeness for c, p in found.items()}


def evaluate(
    *, users: int, held: HeldOut, queries: Sequence[int], score: fr.Scorer, k: int = 10
) -> fr.PerQuery:
    """AUC, P@k and hit@k per query, the hidden friends as hits, kept ones not candidates."""
    return fr.per_query(
        users=users, friends=held.hidden, queries=queries, score=score, k=k, exclude=held.kept
    )
