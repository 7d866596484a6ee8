"""What the user routes read and answer, and the `userId` they act on."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import Depends, Path
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from rhime.kit import ids
from rhime.user import profiles

_LETTERS = re.compile(r"^[A-Za-z]+$")
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input"},
    401: {"description": "Not signed in"},
}
OWNER_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not your profile"},
    404: {"description": "No such profile"},
}


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Profile(Model):
    user_id: str
    user_name: str
    first_name: str
    last_name: str = ""
    bio: str = ""
    age: int | None = None
    gender: str = ""
    profile_image: str = profiles.DEFAULT_AVATAR


class ProfilePatch(Model):
    """The original's rules: firstName required; the rest optional, "" clears a field."""

    first_name: str = Field(min_length=2, max_length=25)
    last_name: str | None = Field(default=None, max_length=25)
    bio: str | None = Field(default=None, max_length=150)
    age: int | None = Field(default=None, ge=11, le=100)
    gender: Literal["", "male", "female"] | None = None

    @field_validator("first_name", "last_name")
    @classmethod
    def _letters(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        value = value.strip()
        if not _LETTERS.fullmatch(value):
            raise ValueError("only letters are allowed")
        return value.lower()

    @field_validator("bio")
    @classmethod
    def _bio(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None


class UploadRequest(Model):
    content_type: Literal["image/jpeg", "image/png", "image/webp"] = "image/jpeg"


class Upload(Model):
    url: str = Field(
        description="Presigned S3 POST URL: send `fields` and then the image as `file` there, "
        "as multipart/form-data."
    )
    fields: dict[str, str] = Field(description="Form fields of the POST, the policy included.")
    key: str = Field(description="Send to the confirm route once uploaded.")
    content_type: str
    expires_in: int
    max_bytes: int


class Confirm(Model):
    key: str = Field(min_length=1, max_length=200)


class CardsRequest(BaseModel):
    ids: list[str] = Field(max_length=profiles.MAX_CARDS)


class Card(BaseModel):
    userId: str
    userName: str
    displayName: str
    profileImage: str


class Cards(BaseModel):
    cards: dict[str, Card]


class Found(BaseModel):
    users: list[Card]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


def user_id_path(user_id: Annotated[str, Path(alias="userId")]) -> str:
    return ids.object_id(user_id, what="userId")


UserId = Annotated[str, Depends(user_id_path)]


def profile_of(doc: dict[str, Any]) -> Profile:
    return Profile(user_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})
