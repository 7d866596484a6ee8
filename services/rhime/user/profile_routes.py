"""A profile: anyone signed in reads it, its owner edits it."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.user import profiles
from rhime.user.models import ERRORS, OWNER_ONLY, Profile, ProfilePatch, UserId, profile_of


def router() -> APIRouter:
    routes = APIRouter(prefix="/api/users", tags=["users"], responses=ERRORS)

    @routes.get("/{userId}", responses={404: {"description": "No such profile"}})
    async def get_profile(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Profile:
        """Anyone signed in can read any profile (the email stays private)."""
        return profile_of(await profiles.get(kit, user_id=user_id))

    @routes.patch("/{userId}", responses=OWNER_ONLY)
    async def patch_profile(
        body: ProfilePatch, user: identity.User, user_id: UserId, kit: kit_app.KitDep
    ) -> Profile:
        """Edit your own profile."""
        fields = body.model_dump(exclude_unset=True)
        doc = await profiles.update(kit, caller=user.user_id, user_id=user_id, fields=fields)
        return profile_of(doc)

    return routes
