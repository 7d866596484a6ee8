"""Request and response bodies of the comment service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class NewComment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=120)

    @field_validator("text")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("The comment is empty.")
        return value


class CommentOut(BaseModel):
    commentId: str
    postId: str
    userId: str
    text: str
    createdAt: str


class CommentPage(BaseModel):
    comments: list[CommentOut]
    next: str | None


class Count(BaseModel):
    count: int


class Ids(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(max_length=100)


class Counts(BaseModel):
    counts: dict[str, int]
