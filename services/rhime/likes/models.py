"""Request and response bodies of the like services."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rhime.kit import ids

check_id = ids.object_id


class Ids(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=100)

    @field_validator("ids")
    @classmethod
    def object_ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if not ids.is_object_id(value):
                raise ValueError("Invalid ids")
        return [v.lower() for v in values]


class Summary(Ids):
    userId: str = Field(min_length=1, max_length=64)


class Liked(BaseModel):
    isLiked: bool


class LikedMany(BaseModel):
    liked: dict[str, bool]


class Count(BaseModel):
    count: int


class Counts(BaseModel):
    counts: dict[str, int]


class ItemSummary(BaseModel):
    count: int
    liked: bool


class Summaries(BaseModel):
    items: dict[str, ItemSummary]
