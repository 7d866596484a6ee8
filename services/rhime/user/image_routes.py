"""A profile image: its owner uploads it straight to S3 (presigned), confirms or removes it."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.user import images, profiles
from rhime.user.models import (
    ERRORS,
    OWNER_ONLY,
    Confirm,
    Profile,
    Upload,
    UploadRequest,
    UserId,
    profile_of,
)


def router(*, store: images.Store) -> APIRouter:
    routes = APIRouter(prefix="/api/users", tags=["users"], responses=ERRORS)

    @routes.put("/{userId}/image", responses=OWNER_ONLY)
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
        # the limits the presigned POST itself carries
        return Upload(
            url=url,
            fields=fields,
            key=key,
            content_type=content_type,
            expires_in=store.expires_seconds,
            max_bytes=store.max_bytes,
        )

    @routes.post("/{userId}/image/confirm", responses=OWNER_ONLY)
    async def confirm_image(
        body: Confirm, user: identity.User, user_id: UserId, kit: kit_app.KitDep
    ) -> Profile:
        """After the upload: checks the object's size and type, makes it public and stores
        its URL as the profile image."""
        doc = await profiles.confirm_upload(
            kit, store=store, caller=user.user_id, user_id=user_id, key=body.key
        )
        return profile_of(doc)

    @routes.delete("/{userId}/image", responses=OWNER_ONLY)
    async def delete_image(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Profile:
        """Remove the image object and its URL (the default avatar shows again)."""
        doc = await profiles.delete_image(kit, store=store, caller=user.user_id, user_id=user_id)
        return profile_of(doc)

    return routes
