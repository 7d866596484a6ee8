"""The recommendation components' part of the `music` database, beside the collections they
share with the spotify service (rhime.music.store, re-exported here).

- `refreshes`: the weekly refresh's durable progress, one document per week.
- `announced`: `{_id: "a:b", userId: a, otherId: b, at}`, one per pair ever among a's top
  recommendations, so the weekly refresh tells a only of people new to them; the document
  stages its `user.recommended` (rhime.recommendation.announce).
- `blocks`: the recommendation component's copy of blocks (rhime.blocking).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pymongo import ASCENDING, IndexModel

from rhime.music import store as shared
from rhime.music.store import DATABASE as DATABASE
from rhime.music.store import POSTINGS as POSTINGS
from rhime.music.store import RECOMMENDATIONS as RECOMMENDATIONS
from rhime.music.store import STATS as STATS
from rhime.music.store import TASTES as TASTES
from rhime.music.store import TOKENS as TOKENS
from rhime.music.store import recommendation_id as recommendation_id

REFRESHES = "refreshes"
ANNOUNCED = "announced"

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    **shared.INDEXES,
    # the announcements naming a person, when they delete their account
    ANNOUNCED: [IndexModel([("userId", ASCENDING)]), IndexModel([("otherId", ASCENDING)])],
}
