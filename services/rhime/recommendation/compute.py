"""Recommendations for one user: candidates from the inverted index and from the follow
graph (people the people I follow follow), exact ranking by taste raised by graph closeness
(`music/proximity.py`), storage both ways.

The work per user is bounded by the user's own index keys (at most `postings_per_key`
postings read from each) and `max_candidates` ranked profiles, not by the population.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pymongo import DeleteOne, UpdateOne

from rhime.music import candidates as cand
from rhime.music import proximity as px
from rhime.music import similarity as sim
from rhime.music import taste, tastes
from rhime.recommendation import store

KEEP = 50  # recommendations written per computation (pages of 10)
MAX_STORED = 100  # a user's undismissed list is trimmed to this many
SHOWN_COMMON = 10  # common items kept per category in an explanation
SHOWN_VIA = 3  # people I follow named in an explanation ("followed by A, B and 3 others")
MAX_NEAR = 100  # closest friends of friends added to the candidates taste found
_TASTE_PARTS = ("commonArtists", "commonTracks", "commonGenres", "breakdown")


class _Head(list[cand.Posting]):
    """The heaviest postings of a key as read from MongoDB; `len` is the whole list's length,
    which candidate search uses for IDF and to skip common keys."""

    def __init__(self, items: Sequence[cand.Posting], total: int) -> None:
        super().__init__(items)
        self.total = max(total, len(items))

    def __len__(self) -> int:
        return self.total


class _IndexView(cand.InvertedIndex):
    """The part of the MongoDB index one query needs, shaped for `find_candidates`."""

    def __init__(self, postings: cand.Postings, population: int) -> None:
        super().__init__(postings=postings)
        self.population = population

    @property
    def users(self) -> int:
        return self.population


async def _read_postings(db: Any, keys: Sequence[str], limit: int) -> dict[str, list[cand.Posting]]:
    read: dict[str, list[cand.Posting]] = {}
    for key in keys:
        cursor = db[store.POSTINGS].find({"key": key}, {"userId": 1, "wt": 1})
        read[key] = [
            (doc["userId"], int(doc["wt"])) async for doc in cursor.sort("wt", -1).limit(limit)
        ]
    return read


async def find_candidates(
    db: Any, *, user_id: str, profile: taste.Profile, exclude: Collection[str] = ()
) -> cand.CandidateSearch:
    limits = tastes.LIMITS
    keys = [key for key, _ in cand.index_entries(profile, limits=limits)]
    counts = {
        doc["_id"]: int(doc.get("postings", 0))
        async for doc in db[store.STATS].find({"_id": {"$in": keys}}, {"postings": 1})
    }
    population = max(1, await db[store.TASTES].estimated_document_count())
    too_common = max(limits.min_key_postings, limits.max_key_share * population)
    # common keys are read only if the others give too few candidates, as find_candidates does
    rare = [k for k in keys if counts.get(k, 0) <= too_common]
    common = [k for k in keys if counts.get(k, 0) > too_common]
    read = await _read_postings(db, rare, limits.postings_per_key)

    def search() -> cand.CandidateSearch:
        view: cand.Postings = {k: _Head(read.get(k, []), counts.get(k, 0)) for k in keys}
        return cand.find_candidates(
            _IndexView(view, population),
            user_id=user_id,
            profile=profile,
            limits=limits,
            exclude=exclude,
        )

    found = search()
    if common and len(found.candidates) < limits.min_candidates:
        read |= await _read_postings(db, common, limits.postings_per_key)
        found = search()
    return found


def explanation(a: taste.Profile, b: taste.Profile, *, names: Mapping[str, str]) -> dict[str, Any]:
    """Common artists, tracks and genres (most telling first) and the per-category scores."""
    why = sim.explain_prepared(a, b, name=tastes.measure_name())

    def named(ids: Sequence[str]) -> list[dict[str, str]]:
        return [{"id": i, "name": names.get(i, "")} for i in ids[:SHOWN_COMMON]]

    return {
        "commonArtists": named(why.common_artists),
        "commonTracks": named(why.common_tracks),
        "commonGenres": [{"id": g, "name": g} for g in why.common_genres[:SHOWN_COMMON]],
        "breakdown": {c: round(v, 4) for c, v in why.breakdown.items()},
    }


def graph_explanation(near: px.Proximity[str] | None) -> dict[str, Any]:
    """How many people I follow follow them, and the most telling few."""
    via = near.via if near is not None else ()
    return {"mutualFollows": len(via), "followedBy": list(via[:SHOWN_VIA])}


def _upsert(x: str, y: str, fields: Mapping[str, Any]) -> UpdateOne:
    return UpdateOne(
        {"_id": store.recommendation_id(x, y)},
        {"$set": {"userId": x, "otherId": y, **fields}, "$setOnInsert": {"dismissed": False}},
        upsert=True,
    )


def _both_ways(
    a: str,
    b: str,
    *,
    taste: float,
    closeness: float,
    theirs: float,
    why: Mapping[str, Any],
    graph: Mapping[str, Any],
    stamp: datetime.datetime,
    weight: float,
) -> list[UpdateOne]:
    """`a`'s entry in full; `b`'s keeps the graph part `b`'s own computation found (their
    closeness `theirs`), since taste is symmetric and the follow graph is not."""
    mine = {
        "similarity": px.blend(taste=taste, closeness=closeness, weight=weight),
        "taste": taste,
        "closeness": closeness,
        "explanation": {**why, **graph},
        "computedAt": stamp,
    }
    back = {
        "similarity": px.blend(taste=taste, closeness=theirs, weight=weight),
        "taste": taste,
        **{f"explanation.{part}": why[part] for part in _TASTE_PARTS},
        "computedAt": stamp,
    }
    return [_upsert(a, b, mine), _upsert(b, a, back)]


async def recommend(
    db: Any,
    *,
    user_id: str,
    exclude: Collection[str] = (),
    near: Mapping[str, px.Proximity[str]] | None = None,
    weight: float = px.WEIGHT,
) -> list[tuple[str, float]]:
    """Compute and store `user_id`'s recommendations; returns the top ones, best first.

    Pairs are upserted in both directions with `$setOnInsert dismissed=false`, so a dismissal
    survives recomputation. `exclude` (people the user follows) is never recommended to them.
    `near` (graph proximity through the people they follow) adds the closest as candidates
    and raises scores by `weight * closeness`; without it the score is taste alone.
    """
    near = near or {}
    doc = await db[store.TASTES].find_one({"_id": user_id}, {"raw": 1, "scored": 1, "names": 1})
    if doc is None:
        return []
    mine = tastes.profile_from(doc)
    search = await find_candidates(
        db, user_id=user_id, profile=tastes.stored_profile(doc), exclude=exclude
    )
    recs = db[store.RECOMMENDATIONS]
    existing = await _existing(recs, user_id=user_id)
    pool = _pool(user_id=user_id, existing=existing, search=search, near=near, exclude=exclude)
    loaded = await _load_profiles(db, user_ids=pool)
    scored = _score(mine=mine, loaded=loaded, near=near, weight=weight)
    top = [(other, s) for other, s in scored.ranked[:KEEP] if s > 0]
    keep = _keep(top=top, ranked=scored.ranked, existing=existing)
    theirs = await _their_closeness(recs, user_id=user_id, others=keep)
    ops: list[UpdateOne | DeleteOne] = []
    ops += _writes(
        user_id=user_id,
        mine=mine,
        loaded=loaded,
        scored=scored,
        keep=keep,
        theirs=theirs,
        near=near,
        names=tastes.names_of(doc),
        weight=weight,
    )
    ops += _deletes(user_id=user_id, existing=existing, ranked=scored.ranked)
    if ops:
        await recs.bulk_write(ops, ordered=False)
    await _trim(recs, user_id=user_id)
    return top


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Scored:
    by_taste: dict[str, float]
    closeness: dict[str, float]
    ranked: list[tuple[str, float]]  # blended score, best first (ties by id)


async def _existing(recs: Any, *, user_id: str) -> list[str]:
    """The user's current undismissed recommendations, best first."""
    return [
        r["otherId"]
        async for r in recs.find({"userId": user_id, "dismissed": False}, {"otherId": 1})
        .sort([("similarity", -1), ("otherId", 1)])
        .limit(MAX_STORED)
    ]


def _pool(
    *,
    user_id: str,
    existing: Collection[str],
    search: cand.CandidateSearch,
    near: Mapping[str, px.Proximity[str]],
    exclude: Collection[str],
) -> set[str]:
    """Everyone to rank: those already recommended (so their scores are refreshed), the taste
    candidates and the closest in the graph; never the user or the people they follow."""
    closest = sorted(near, key=lambda c: (-near[c].adamic_adar, c))[:MAX_NEAR]
    pool = (set(existing) | {u for u, _ in search.candidates} | set(closest)) - set(exclude)
    pool.discard(user_id)
    return pool


async def _load_profiles(db: Any, *, user_ids: Collection[str]) -> dict[str, taste.Profile]:
    return {
        other["_id"]: tastes.profile_from(other)
        async for other in db[store.TASTES].find({"_id": {"$in": sorted(user_ids)}}, {"scored": 1})
    }


def _score(
    *,
    mine: taste.Profile,
    loaded: Mapping[str, taste.Profile],
    near: Mapping[str, px.Proximity[str]],
    weight: float,
) -> _Scored:
    """Exact taste similarity to every loaded profile, blended with graph closeness."""
    by_taste = dict(
        cand.rank(
            profile=mine, candidates=loaded, similarity=tastes.scoring_measure(), limit=len(loaded)
        )
    )
    closeness = {other: near[other].closeness if other in near else 0.0 for other in by_taste}
    scores = {
        other: px.blend(taste=t, closeness=closeness[other], weight=weight)
        for other, t in by_taste.items()
    }
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    return _Scored(by_taste=by_taste, closeness=closeness, ranked=ranked)


def _keep(
    *,
    top: Sequence[tuple[str, float]],
    ranked: Sequence[tuple[str, float]],
    existing: Collection[str],
) -> set[str]:
    """The pairs to write: the top ones, and what the user had that still scores, even below
    the top (so it is refreshed rather than left stale)."""
    return {other for other, _ in top} | {
        other for other, s in ranked if other in existing and s > 0
    }


async def _their_closeness(recs: Any, *, user_id: str, others: Collection[str]) -> dict[str, float]:
    """The graph part of each reverse entry, as its owner's computation left it."""
    return {
        r["userId"]: float(r.get("closeness", 0.0))
        async for r in recs.find(
            {"_id": {"$in": [store.recommendation_id(o, user_id) for o in sorted(others)]}},
            {"userId": 1, "closeness": 1},
        )
    }


def _writes(
    *,
    user_id: str,
    mine: taste.Profile,
    loaded: Mapping[str, taste.Profile],
    scored: _Scored,
    keep: Collection[str],
    theirs: Mapping[str, float],
    near: Mapping[str, px.Proximity[str]],
    names: Mapping[str, str],
    weight: float,
) -> list[UpdateOne]:
    """Both entries of every pair kept, in ranked order, stamped with one time."""
    stamp = datetime.datetime.now(datetime.UTC)
    ops: list[UpdateOne] = []
    for other, _ in scored.ranked:
        if other in keep:
            ops += _both_ways(
                user_id,
                other,
                taste=scored.by_taste[other],
                closeness=scored.closeness[other],
                theirs=theirs.get(other, 0.0),
                why=explanation(mine, loaded[other], names=names),
                graph=graph_explanation(near.get(other)),
                stamp=stamp,
                weight=weight,
            )
    return ops


def _deletes(
    *, user_id: str, existing: Collection[str], ranked: Sequence[tuple[str, float]]
) -> list[DeleteOne]:
    """Drop the user's recommendations that no longer score (unless dismissed, which stay)."""
    gone = set(existing) - {other for other, s in ranked if s > 0}
    return [
        DeleteOne({"_id": store.recommendation_id(user_id, other), "dismissed": False})
        for other in sorted(gone)
    ]


async def _trim(recs: Any, *, user_id: str) -> None:
    """Keep a user's undismissed list bounded (others' computations add to it)."""
    cursor = (
        recs.find({"userId": user_id, "dismissed": False}, {"_id": 1})
        .sort([("similarity", -1), ("otherId", 1)])
        .skip(MAX_STORED)
        .limit(1000)
    )
    extra = [doc["_id"] async for doc in cursor]
    if extra:
        await recs.delete_many({"_id": {"$in": extra}, "dismissed": False})
