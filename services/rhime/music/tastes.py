"""Taste documents, the inverted index and the item statistics kept beside them.

Writing a taste updates, in this order, the item document frequencies (`stats.df`), the
user's postings (and `stats.postings`), then the taste document itself. A crash between the
steps can leave a counter off by one for a key until the next refresh corrects the user's
entries; counters are statistics for IDF and for skipping common keys, so that is harmless.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo import DeleteOne, UpdateOne

from rhime.music import candidates as cand
from rhime.music import similarity as sim
from rhime.music import store, taste
from rhime.music.taste import TopItems

LIMITS = cand.IndexLimits()
_PREFIX: Mapping[taste.Category, str] = {
    "tracks": "track:",
    "artists": "artist:",
    "genres": "genre:",
}


def uses_idf() -> bool:
    return sim.DEFAULT in sim.NEEDS_IDF


def scoring_measure() -> sim.Similarity:
    """The default measure as applied to stored scoring profiles (already prepared)."""
    return sim.scoring(sim.DEFAULT)


def measure_name() -> str:
    return sim.DEFAULT


def build_profile(items: TopItems) -> taste.Profile:
    # the builder the default measure was chosen with (docs/recommendations.md)
    return taste.BUILDERS[sim.BUILDER](
        tracks=items.tracks, artists=items.artists, genres_by_artist=items.genres_by_artist
    )


def _item_keys(profile: taste.Profile) -> set[str]:
    return {_PREFIX[c] + key for c in taste.CATEGORIES for key in profile.weights(c)}


# lists of {k, w} sub-documents, heaviest first: FerretDB stores no nested arrays, and item
# ids or genre names are not safe as field names


def _pairs(weights: Mapping[str, float]) -> list[dict[str, Any]]:
    ordered = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"k": key, "w": w} for key, w in ordered]


def _weights(pairs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    return {str(p["k"]): float(p["w"]) for p in pairs}


def _entries(doc: Mapping[str, Any] | None) -> list[cand.Posting]:
    return [(str(p["k"]), int(p["w"])) for p in (doc or {}).get("keys") or ()]


def profile_from(doc: Mapping[str, Any], *, field: str = "scored") -> taste.Profile:
    part = doc.get(field) or {}
    return taste.Profile(
        tracks=_weights(part.get("tracks") or ()),
        artists=_weights(part.get("artists") or ()),
        genres=_weights(part.get("genres") or ()),
    )


def stored_profile(doc: Mapping[str, Any]) -> taste.Profile:
    """The raw (un-reweighed) profile of a taste document."""
    return profile_from(doc, field="raw")


async def _apply_df(db: Any, *, before: set[str], after: set[str]) -> None:
    ops = [UpdateOne({"_id": k}, {"$inc": {"df": 1}}, upsert=True) for k in sorted(after - before)]
    ops += [UpdateOne({"_id": k}, {"$inc": {"df": -1}}) for k in sorted(before - after)]
    if ops:
        await db[store.STATS].bulk_write(ops, ordered=False)


async def _idf_for(db: Any, *, profile: taste.Profile) -> sim.Idf:
    """IDF of the profile's own items only: what reweighing this one profile needs."""
    users = max(1, await db[store.TASTES].estimated_document_count())
    keys = sorted(_item_keys(profile))
    df: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        cursor = db[store.STATS].find({"_id": {"$in": keys[start : start + 500]}}, {"df": 1})
        async for doc in cursor:
            df[doc["_id"]] = int(doc.get("df", 0))

    def table(category: taste.Category) -> dict[str, float]:
        prefix = _PREFIX[category]
        return {
            key: sim.idf_value(users=users, frequency=df.get(prefix + key, 1))
            for key in profile.weights(category)
        }

    return sim.Idf(
        users=users, tracks=table("tracks"), artists=table("artists"), genres=table("genres")
    )


async def _apply_postings(
    db: Any, *, user_id: str, before: Sequence[cand.Posting], after: Sequence[cand.Posting]
) -> None:
    old = dict(before)
    new = dict(after)
    postings = db[store.POSTINGS]
    stats = db[store.STATS]
    removed = sorted(old.keys() - new.keys())
    if removed:
        await postings.bulk_write(
            [DeleteOne({"_id": store.posting_id(k, user_id)}) for k in removed], ordered=False
        )
        await stats.bulk_write(
            [UpdateOne({"_id": k}, {"$inc": {"postings": -1}}) for k in removed], ordered=False
        )
    added = []
    for key, weight in new.items():
        result = await postings.update_one(
            {"_id": store.posting_id(key, user_id)},
            {"$set": {"key": key, "userId": user_id, "wt": weight}},
            upsert=True,
        )
        if result.upserted_id is not None:
            added.append(key)
    if added:
        # counted only when the posting was really inserted: a retried job does not recount
        await stats.bulk_write(
            [UpdateOne({"_id": k}, {"$inc": {"postings": 1}}, upsert=True) for k in added],
            ordered=False,
        )


async def save(
    db: Any, *, user_id: str, items: TopItems, time_range: str, week: str | None = None
) -> taste.Profile:
    """Store a freshly fetched taste and index it; returns the scoring profile."""
    profile = build_profile(items)
    tastes = db[store.TASTES]
    old = await tastes.find_one({"_id": user_id}, {"raw": 1, "keys": 1})
    before = _item_keys(stored_profile(old)) if old else set()
    await _apply_df(db, before=before, after=_item_keys(profile))
    idf = await _idf_for(db, profile=profile) if uses_idf() else None
    scored = sim.prepared(profile, name=sim.DEFAULT, idf=idf)
    entries = cand.index_entries(profile, limits=LIMITS)
    await _apply_postings(db, user_id=user_id, before=_entries(old), after=entries)
    names = {key: items.names.get(key, "") for key in [*profile.tracks, *profile.artists]}
    doc: dict[str, Any] = {
        "timeRange": time_range,
        "fetchedAt": datetime.datetime.now(datetime.UTC),
        "raw": {c: _pairs(profile.weights(c)) for c in taste.CATEGORIES},
        "scored": {c: _pairs(scored.weights(c)) for c in taste.CATEGORIES},
        "names": [{"k": key, "n": name} for key, name in sorted(names.items())],
        "keys": [{"k": k, "w": w} for k, w in entries],
    }
    if week is not None:
        doc["week"] = week
    await tastes.replace_one({"_id": user_id}, doc, upsert=True)
    return scored


def names_of(doc: Mapping[str, Any]) -> dict[str, str]:
    return {str(p["k"]): str(p["n"]) for p in doc.get("names") or ()}


def top(doc: Mapping[str, Any], *, category: taste.Category, limit: int) -> list[dict[str, Any]]:
    """A user's heaviest items of one category with names, for the top-items route."""
    names = names_of(doc)
    pairs = (doc.get("raw") or {}).get(category) or []
    return [
        {"id": p["k"], "name": names.get(p["k"], p["k"]), "weight": p["w"]} for p in pairs[:limit]
    ]


async def forget(db: Any, *, user_id: str) -> None:
    """Remove a user's taste, postings and recommendations (after a disconnection)."""
    old = await db[store.TASTES].find_one({"_id": user_id}, {"raw": 1, "keys": 1})
    if old is not None:
        await _apply_postings(db, user_id=user_id, before=_entries(old), after=[])
        await _apply_df(db, before=_item_keys(stored_profile(old)), after=set())
        await db[store.TASTES].delete_one({"_id": user_id})
    await db[store.RECOMMENDATIONS].delete_many({"userId": user_id})
