"""Request and response bodies of the post service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class Artist(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)


class Track(BaseModel):
    """A track as the spotify service describes it (checked again before it is stored)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")
    name: str = Field(min_length=1, max_length=300)
    artists: list[Artist] = Field(min_length=1, max_length=20)
    url: HttpUrl | None = None
    image: HttpUrl | None = None


class NewPost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # only the id: the rest is looked up on Spotify
    trackId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")
    caption: str = Field(default="", max_length=280)


class TrackOut(BaseModel):
    id: str
    name: str
    artists: list[Artist]
    url: str | None
    image: str | None


class PostOut(BaseModel):
    postId: str
    userId: str
    createdAt: str
    caption: str
    track: TrackOut


class PostPage(BaseModel):
    posts: list[PostOut]
    next: str | None


class Count(BaseModel):
    count: int


class Ids(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(max_length=200)


class PostsById(BaseModel):
    posts: dict[str, PostOut]
