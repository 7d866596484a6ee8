"""What the graph routes read and answer, and the `userId` and cursor they take."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rhime.graph import edges
from rhime.kit import ids


class Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Following(Out):
    following: bool = Field(description="Whether the caller now follows the user.")


class Relationship(Out):
    following: bool = Field(description="The caller follows the user.")
    followed_by: bool = Field(description="The user follows the caller.")
    blocking: bool = Field(description="The caller blocks the user.")


class Blocking(Out):
    blocking: bool = Field(description="Whether the caller now blocks the user.")


class Counts(Out):
    followers: int
    following: int


class Page(Out):
    user_ids: list[str] = Field(description=f"Up to {edges.PAGE} ids, ascending.")
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


def user_id_path(user_id: Annotated[str, Path(alias="userId")]) -> str:
    return ids.object_id(user_id, what="userId")


def after_query(after: Annotated[str | None, Query()] = None) -> str | None:
    return None if after is None else ids.object_id(after, what="after")


UserId = Annotated[str, Depends(user_id_path)]
After = Annotated[str | None, Depends(after_query)]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid userId or cursor"},
    401: {"description": "Not signed in"},
    404: {"description": "No such user"},
}
