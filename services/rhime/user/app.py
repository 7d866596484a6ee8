"""user: `/api/users` — profiles and profile images; `/internal/users/cards` for services."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from rhime import blocking, events
from rhime.kit import app as kit_app
from rhime.kit import bus, identity, ids
from rhime.kit.settings import Settings as KitSettings
from rhime.user import archive, images, profiles, search

PREFIX = "/api/users"
_LETTERS = re.compile(r"^[A-Za-z]+$")


class Settings(KitSettings):
    s3_bucket: str = Field(
        default="rhime-profile-images", description="S3 bucket of profile images (public read)"
    )
    s3_region: str = Field(default="eu-west-1", description="AWS region of the bucket")
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint instead of AWS (e.g. moto locally); when set, the "
        "bucket is created at startup if missing",
    )
    s3_public_endpoint_url: str | None = Field(
        default=None,
        description="endpoint as browsers reach it, for upload URLs and image links (default: "
        "the endpoint above)",
    )
    upload_expires_seconds: int = Field(
        default=120,
        ge=30,
        le=600,
        description="seconds a presigned profile-image upload stays valid",
    )
    max_image_bytes: int = Field(
        default=5_000_000,
        ge=1,
        description="largest profile image the presigned upload accepts (the web page's "
        "limit is the same)",
    )


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


def _profile(doc: dict[str, Any]) -> Profile:
    return Profile(user_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


def create(settings: Settings) -> FastAPI:
    router = APIRouter(
        prefix=PREFIX,
        tags=["users"],
        responses={400: {"description": "Invalid input"}, 401: {"description": "Not signed in"}},
    )
    internal = APIRouter(prefix="/internal/users", tags=["internal"])
    store = images.Store(
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        endpoint_url=settings.s3_endpoint_url,
        public_endpoint_url=settings.s3_public_endpoint_url,
        max_bytes=settings.max_image_bytes,
        expires_seconds=settings.upload_expires_seconds,
    )
    owner_only: dict[int | str, dict[str, Any]] = {
        403: {"description": "Not your profile"},
        404: {"description": "No such profile"},
    }

    @router.get("/search")
    async def find_people(
        user: identity.User,
        kit: kit_app.KitDep,
        q: Annotated[str, Query(max_length=200)] = "",
        after: Annotated[str | None, Query(max_length=400)] = None,
    ) -> Found:
        """People whose userName, display name, or a word of their display name starts with
        `q` (1 to 50 characters; case and accents ignored), 20 a page in that term's order.
        People who block me or whom I block are never found."""
        term = search.query(q)
        anchor = search.after(after) if after else None
        found, next_ = await profiles.find(kit, viewer=user.user_id, q=term, after=anchor)
        return Found(users=[Card(**c) for c in found], next=next_)

    @router.get("/me/export", responses={502: {"description": "A part could not be had"}})
    async def export(user: identity.User, kit: kit_app.KitDep) -> JSONResponse:
        """Download everything Rhime holds about me as one JSON archive: account, profile,
        posts, comments, likes, follows, Spotify connection, taste, recommendations and
        notifications (never tokens nor the password hash)."""
        profile = _profile(await profiles.get(kit, user_id=user.user_id))
        found = await archive.gather(
            kit, user_id=user.user_id, profile=profile.model_dump(by_alias=True)
        )
        name = f"rhime-{user.user_name or user.user_id}.json"
        return JSONResponse(
            found, headers={"content-disposition": f'attachment; filename="{name}"'}
        )

    @router.get("/{userId}", responses={404: {"description": "No such profile"}})
    async def get_profile(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Profile:
        """Anyone signed in can read any profile (the email stays private)."""
        return _profile(await profiles.get(kit, user_id=user_id))

    @router.patch("/{userId}", responses=owner_only)
    async def patch_profile(
        body: ProfilePatch, user: identity.User, user_id: UserId, kit: kit_app.KitDep
    ) -> Profile:
        """Edit your own profile."""
        fields = body.model_dump(exclude_unset=True)
        doc = await profiles.update(kit, caller=user.user_id, user_id=user_id, fields=fields)
        return _profile(doc)

    @router.put("/{userId}/image", responses=owner_only)
    async def start_image_upload(
        user: identity.User,
        user_id: UserId,
        kit: kit_app.KitDep,
        body: UploadRequest | None = None,
    ) -> Upload:
        """A presigned S3 POST (valid `expiresIn` seconds, up to `maxBytes` of the given
        content type) for a new profile image."""
        content_type = (body or UploadRequest()).content_type
        key, url, fields = await profiles.start_upload(
            kit, store=store, caller=user.user_id, user_id=user_id, content_type=content_type
        )
        return Upload(
            url=url,
            fields=fields,
            key=key,
            content_type=content_type,
            expires_in=settings.upload_expires_seconds,
            max_bytes=settings.max_image_bytes,
        )

    @router.post("/{userId}/image/confirm", responses=owner_only)
    async def confirm_image(
        body: Confirm, user: identity.User, user_id: UserId, kit: kit_app.KitDep
    ) -> Profile:
        """After the upload: checks the object's size and type, makes it public and stores
        its URL as the profile image."""
        doc = await profiles.confirm_upload(
            kit, store=store, caller=user.user_id, user_id=user_id, key=body.key
        )
        return _profile(doc)

    @router.delete("/{userId}/image", responses=owner_only)
    async def delete_image(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Profile:
        """Remove the image object and its URL (the default avatar shows again)."""
        doc = await profiles.delete_image(kit, store=store, caller=user.user_id, user_id=user_id)
        return _profile(doc)

    @internal.post("/cards")
    async def cards(body: CardsRequest, caller: identity.Service, kit: kit_app.KitDep) -> Cards:
        """Author cards for up to 100 ids (internal: components only)."""
        found = await profiles.cards(kit, ids=body.ids)
        return Cards(cards={k: Card(**v) for k, v in found.items()})

    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        async def on_user_created(event: events.UserCreated) -> None:
            await profiles.create(kit, user_id=event.user_id, user_name=event.user_name)

        async def on_user_deleted(event: events.UserDeleted) -> None:
            await profiles.forget(kit, store=store, user_id=event.user_id)

        async def on_block(event: blocking.Change) -> None:
            await blocking.apply(kit.database, event)

        return [
            bus.Subscription(event=events.UserCreated, handler=on_user_created),
            bus.Subscription(event=events.UserDeleted, handler=on_user_deleted),
            bus.Subscription(event=events.UserBlocked, handler=on_block),
            bus.Subscription(event=events.UserUnblocked, handler=on_block),
        ]

    async def bucket(kit: kit_app.Kit) -> None:
        if settings.s3_endpoint_url:
            await store.ensure_bucket()

    return kit_app.create_app(
        settings,
        title="user",
        description="Profiles, profile images and author cards.",
        database="user",
        api_prefix=PREFIX,
        routers=[router, internal],
        subscriptions=subscriptions,
        on_ready=[bucket],
        tasks=[profiles.keep_search_built],
    )
