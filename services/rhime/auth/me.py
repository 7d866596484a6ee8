"""The signed-in account: read it, or delete it with everything Rhime holds about its owner."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rhime.auth import accounts, attempts, passwords
from rhime.auth.models import DeleteAccount, UserOut, fields
from rhime.kit import access_tokens, client_address, identity
from rhime.kit import app as kit_app


def router(*, cookie_secure: bool, hasher: passwords.Hasher, limits: attempts.Limits) -> APIRouter:
    routes = APIRouter(prefix="/api/auth", tags=["auth"])

    @routes.get("/me", responses={401: {"description": "Not signed in"}})
    async def me(user: identity.User, kit: kit_app.KitDep) -> UserOut:
        """The signed-in user (Spotify state fresh from the account, not from the token)."""
        return UserOut(**fields(await accounts.get(kit, user_id=user.user_id)))

    @routes.delete(
        "/me",
        status_code=204,
        responses={
            400: {"description": "Wrong password"},
            401: {"description": "Not signed in"},
            429: {"description": "Too many wrong passwords"},
        },
    )
    async def delete_me(
        body: DeleteAccount, request: Request, user: identity.User, kit: kit_app.KitDep
    ) -> Response:
        """Delete my account and everything Rhime holds about me (the current password
        confirms it). Signs out everywhere at once; the rest is removed within moments
        (`user.deleted`). The userName and email can be used again."""
        await accounts.delete(
            kit,
            hasher=hasher,
            user_id=user.user_id,
            password=body.password,
            client=client_address.of(request),
            limits=limits,
            ttl=access_tokens.TTL_SECONDS,
        )
        response = Response(status_code=204, headers={access_tokens.DELETED_HEADER: "1"})
        access_tokens.clear_cookie(response, secure=cookie_secure)
        return response

    return routes
