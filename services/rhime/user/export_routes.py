"""My data export: everything Rhime holds about me, as one download."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from rhime.kit import app as kit_app
from rhime.kit import identity
from rhime.user import archive, profiles
from rhime.user.models import ERRORS, profile_of


def router() -> APIRouter:
    routes = APIRouter(prefix="/api/users", tags=["users"], responses=ERRORS)

    @routes.get("/me/export", responses={502: {"description": "A part could not be had"}})
    async def export(user: identity.User, kit: kit_app.KitDep) -> JSONResponse:
        """Download everything Rhime holds about me as one JSON archive: account, profile,
        posts, comments, likes, follows, Spotify connection, taste, recommendations and
        notifications (never tokens nor the password hash)."""
        profile = profile_of(await profiles.get(kit, user_id=user.user_id))
        found = await archive.gather(
            kit, user_id=user.user_id, profile=profile.model_dump(by_alias=True)
        )
        name = f"rhime-{user.user_name or user.user_id}.json"
        return JSONResponse(
            found, headers={"content-disposition": f'attachment; filename="{name}"'}
        )

    return routes
