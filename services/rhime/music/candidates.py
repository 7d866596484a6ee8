"""Candidate generation from an inverted index of artists and genres.

Comparing a new user with everyone costs O(population). Instead each user is indexed under
their top artists and genres, and a query reads only the posting lists of the querying
user's own top keys, at most ``postings_per_key`` entries from each, skipping keys so common
that they say little (the globally popular artists, "pop"). The work per query is therefore
bounded by ``(artists_per_user + genres_per_user) * postings_per_key``, whatever the
population size; only the best ``max_candidates`` by a cheap overlap score are then ranked
with a real similarity measure.

Representation (kept plain so a MongoDB-backed index can mirror it):

- a key is ``"artist:<spotify id>"`` or ``"genre:<genre name>"``;
- ``postings[key]`` is a list of ``(user_id, weight)`` pairs, heaviest first, where weight is
  the user's weight for that item as a percentage (1..100) of their heaviest item in the same
  category. In MongoDB: one document ``{key, userId, wt}`` per posting with an index on
  ``(key, wt desc)``; "read a posting list" is ``find({key}).sort(wt, -1).limit(n)`` and the
  list length is ``count_documents({key})`` (or a counter kept per key).
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from rhime.music.similarity import Similarity
from rhime.music.taste import Profile

Posting = tuple[str, int]
Postings = dict[str, list[Posting]]
ProfileLoader = Callable[[Sequence[str]], Mapping[str, Profile]]


@dataclasses.dataclass(frozen=True, slots=True)
class IndexLimits:
    artists_per_user: int = 20  # a user's heaviest artists, indexed and queried
    genres_per_user: int = 5
    postings_per_key: int = 200  # read at most this many postings from one key
    max_key_share: float = 0.1  # skip keys held by more than this share of all users...
    min_key_postings: int = 50  # ...unless they hold fewer postings than this anyway
    min_candidates: int = 30  # below this, fall back to the skipped common keys
    max_candidates: int = 300  # ranked with the real similarity measure


@dataclasses.dataclass(slots=True)
class InvertedIndex:
    postings: Postings = dataclasses.field(default_factory=dict)
    keys_by_user: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def users(self) -> int:
        return len(self.keys_by_user)


@dataclasses.dataclass(frozen=True, slots=True)
class CandidateSearch:
    """Candidates best first with their overlap score, and what the search cost."""

    candidates: list[tuple[str, float]]
    keys_read: int
    keys_skipped: int
    postings_touched: int


def _top_keys(weights: Mapping[str, float], prefix: str, count: int) -> list[Posting]:
    if not weights or count <= 0:
        return []
    heaviest = max(weights.values())
    if heaviest <= 0:
        return []
    top = heapq.nlargest(count, weights.items(), key=lambda item: (item[1], item[0]))
    return [(prefix + key, max(1, round(100 * w / heaviest))) for key, w in top if w > 0]


def index_entries(profile: Profile, *, limits: IndexLimits) -> list[Posting]:
    """The keys a user is indexed and queried under, with their 1..100 weights."""
    return _top_keys(profile.artists, "artist:", limits.artists_per_user) + _top_keys(
        profile.genres, "genre:", limits.genres_per_user
    )


def _by_weight(posting: Posting) -> tuple[int, str]:
    return (-posting[1], posting[0])


def build_index(entries: Iterable[tuple[str, Sequence[Posting]]]) -> InvertedIndex:
    """An index from ``(user_id, index_entries(...))`` pairs, sorted once at the end."""
    index = InvertedIndex()
    postings = index.postings
    for user_id, user_entries in entries:
        if user_id in index.keys_by_user:
            raise ValueError(f"user {user_id!r} given twice")
        index.keys_by_user[user_id] = [key for key, _ in user_entries]
        for key, weight in user_entries:
            postings.setdefault(key, []).append((user_id, weight))
    for plist in postings.values():
        plist.sort(key=_by_weight)
    return index


def remove_user(index: InvertedIndex, *, user_id: str) -> None:
    for key in index.keys_by_user.pop(user_id, ()):
        plist = index.postings.get(key, [])
        index.postings[key] = [p for p in plist if p[0] != user_id]
        if not index.postings[key]:
            del index.postings[key]


def add_user(index: InvertedIndex, *, user_id: str, profile: Profile, limits: IndexLimits) -> None:
    """Index (or re-index, after a taste refresh) one user."""
    remove_user(index, user_id=user_id)
    entries = index_entries(profile, limits=limits)
    index.keys_by_user[user_id] = [key for key, _ in entries]
    for key, weight in entries:
        bisect.insort(index.postings.setdefault(key, []), (user_id, weight), key=_by_weight)


def find_candidates(
    index: InvertedIndex,
    *,
    user_id: str,
    profile: Profile,
    limits: IndexLimits,
    exclude: Collection[str] = (),
) -> CandidateSearch:
    """Users sharing the querying user's top keys, scored by IDF-weighted overlap."""
    population = max(index.users, 1)
    too_common = max(limits.min_key_postings, limits.max_key_share * population)
    wanted = index_entries(profile, limits=limits)
    common: list[tuple[str, int]] = []
    scores: dict[str, float] = {}
    touched = 0
    read = 0

    def read_key(key: str, weight: int) -> None:
        nonlocal touched, read
        plist = index.postings.get(key)
        if not plist:
            return
        read += 1
        idf = math.log1p(population / len(plist))
        for other, other_weight in itertools.islice(plist, limits.postings_per_key):
            touched += 1
            if other == user_id or other in exclude:
                continue
            scores[other] = scores.get(other, 0.0) + min(weight, other_weight) * idf

    for key, weight in wanted:
        if len(index.postings.get(key, ())) > too_common:
            common.append((key, weight))
        else:
            read_key(key, weight)
    skipped = len(common)
    if len(scores) < limits.min_candidates:
        # a user whose taste is all mainstream still deserves candidates
        for key, weight in sorted(common, key=lambda kw: len(index.postings[kw[0]])):
            read_key(key, weight)
            skipped -= 1
            if len(scores) >= limits.min_candidates:
                break
    best = heapq.nlargest(limits.max_candidates, scores.items(), key=lambda kv: (kv[1], kv[0]))
    return CandidateSearch(
        candidates=best, keys_read=read, keys_skipped=skipped, postings_touched=touched
    )


def rank(
    *,
    profile: Profile,
    candidates: Mapping[str, Profile],
    similarity: Similarity,
    limit: int = 10,
) -> list[tuple[str, float]]:
    """The ``limit`` most similar candidates, best first (ties by user id)."""
    scored = ((other, similarity(profile, theirs)) for other, theirs in candidates.items())
    return heapq.nsmallest(limit, scored, key=lambda kv: (-kv[1], kv[0]))


def recommend(
    index: InvertedIndex,
    *,
    user_id: str,
    profile: Profile,
    load_profiles: ProfileLoader,
    similarity: Similarity,
    limits: IndexLimits,
    limit: int = 10,
    exclude: Collection[str] = (),
) -> list[tuple[str, float]]:
    """Candidate generation then exact ranking; ``load_profiles`` fetches candidates' tastes."""
    search = find_candidates(
        index, user_id=user_id, profile=profile, limits=limits, exclude=exclude
    )
    loaded = load_profiles([other for other, _ in search.candidates])
    return rank(profile=profile, candidates=loaded, similarity=similarity, limit=limit)
