"""What the music context holds of a person, for their data export: whether Spotify is
connected (never the tokens), the taste learned from it, and their recommendations."""

from __future__ import annotations

import datetime
from typing import Any

from rhime.music import store, taste, tastes

TOP = 50  # items per category, as the top-items route gives at most


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime.datetime) else None


async def export(db: Any, *, user_id: str) -> dict[str, Any]:
    token = await db[store.TOKENS].find_one(
        {"_id": user_id}, {"connected": 1, "connection": 1, "connectedAt": 1, "disconnectedAt": 1}
    )
    doc = await db[store.TASTES].find_one(
        {"_id": user_id}, {"raw": 1, "names": 1, "timeRange": 1, "fetchedAt": 1}
    )
    found = db[store.RECOMMENDATIONS].find(
        {"userId": user_id}, {"otherId": 1, "similarity": 1, "dismissed": 1, "explanation": 1}
    )
    recommendations = [
        {
            "userId": r["otherId"],
            "similarity": r.get("similarity"),
            "dismissed": bool(r.get("dismissed")),
            "explanation": r.get("explanation") or {},
        }
        async for r in found.sort("similarity", -1)
    ]
    return {
        "spotify": {
            "connected": bool(token and token.get("connected")),
            "connections": int((token or {}).get("connection", 0)),
            "connectedAt": _iso((token or {}).get("connectedAt")),
            "disconnectedAt": _iso((token or {}).get("disconnectedAt")),
        },
        "taste": None
        if doc is None
        else {
            "timeRange": doc.get("timeRange", ""),
            "updatedAt": _iso(doc.get("fetchedAt")),
            **{c: tastes.top(doc, category=c, limit=TOP) for c in taste.CATEGORIES},
        },
        "recommendations": recommendations,
    }
