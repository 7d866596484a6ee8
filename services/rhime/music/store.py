"""The `music` database's collections that the spotify service and the recommendation
components share (the recommendation components' own are in rhime.recommendation.store).

- `tokens`: Spotify tokens per user (see rhime.music.spotify.tokens).
- `tastes`: one document per user: named top items with their weights, the profile used for
  scoring (reweighed by IDF when the default measure needs it) and the index keys it holds.
- `postings`: the inverted index of rhime.music.candidates, one `{key, userId, wt}` document
  per posting, read as `find({key}).sort(wt desc).limit(n)`.
- `stats`: per item key, `df` (users whose profile has it, for IDF) and `postings` (length of
  the key's posting list).
- `recommendations`: `{_id: "a:b", userId: a, otherId: b, similarity, taste, closeness,
  dismissed, explanation}`, one per direction. `similarity` ranks: `taste` (symmetric) raised
  by `closeness` (a's follow graph; set only by a's own computation, as are the explanation's
  `mutualFollows` and `followedBy`). The spotify service exports a person's and forgets
  them with their taste (`tastes.forget`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pymongo import ASCENDING, DESCENDING, IndexModel

DATABASE = "music"
TOKENS = "tokens"
TASTES = "tastes"
POSTINGS = "postings"
STATS = "stats"
RECOMMENDATIONS = "recommendations"

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    POSTINGS: [IndexModel([("key", ASCENDING), ("wt", DESCENDING)])],
    RECOMMENDATIONS: [
        IndexModel(
            [
                ("userId", ASCENDING),
                ("dismissed", ASCENDING),
                ("similarity", DESCENDING),
                ("otherId", ASCENDING),
            ]
        ),
        # the recommendations naming a person, when they delete their account
        IndexModel([("otherId", ASCENDING)]),
        IndexModel([("explanation.followedBy", ASCENDING)]),
    ],
    # the weekly refresh pages through connected users by id
    TOKENS: [IndexModel([("connected", ASCENDING), ("_id", ASCENDING)])],
}


def posting_id(key: str, user_id: str) -> str:
    return f"{key}|{user_id}"


def recommendation_id(user_id: str, other_id: str) -> str:
    return f"{user_id}:{other_id}"
