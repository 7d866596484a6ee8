"""Sessions: sign in, change the password (which ends every other session) and sign out;
each answer sets or clears the `accessToken` cookie."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rhime.auth import accounts, attempts, passwords
from rhime.auth.models import PasswordChange, SignedIn, SignedOut, SignIn, fields
from rhime.auth.settings import Settings
from rhime.kit import access_tokens, client_address, identity
from rhime.kit import app as kit_app

SIGN_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Wrong credentials"},
    429: {"description": "Too many failed attempts"},
    503: {"description": "Too many sign-ins at once"},
}
PASSWORD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Wrong current password, or a new one the rules refuse"},
    401: {"description": "Not signed in"},
    429: {"description": "Too many failed attempts"},
    503: {"description": "Too many at once"},
}


def signed_in(account: accounts.Account, *, settings: Settings) -> JSONResponse:
    """The account with a new token, in the body and as the cookie."""
    token, claims = access_tokens.issue(
        user_id=account.user_id,
        user_name=account.user_name,
        spotify=account.spotify,
        secret=settings.access_token_secret.get_secret_value(),
    )
    out = SignedIn(**fields(account), access_token=token, expires_at=claims.expires_at)
    response = JSONResponse(out.model_dump(by_alias=True))
    access_tokens.set_cookie(
        response, token, secure=settings.cookie_secure, max_age=access_tokens.TTL_SECONDS
    )
    return response


def router(*, settings: Settings, hasher: passwords.Hasher, limits: attempts.Limits) -> APIRouter:
    routes = APIRouter(prefix="/api/auth", tags=["auth"])

    @routes.post("/signin", responses=SIGN_IN_ERRORS)
    async def sign_in(body: SignIn, request: Request, kit: kit_app.KitDep) -> JSONResponse:
        """Sign in by userName or email. Sets the `accessToken` cookie (1 day) and returns the
        same token for API clients (`Authorization: Bearer`)."""
        account = await accounts.sign_in(
            kit,
            hasher=hasher,
            login=body.user_name or body.email or "",
            password=body.password,
            client=client_address.of(request),
            limits=limits,
        )
        return signed_in(account, settings=settings)

    @routes.post("/password", responses=PASSWORD_ERRORS)
    async def change_password(
        body: PasswordChange, user: identity.User, request: Request, kit: kit_app.KitDep
    ) -> JSONResponse:
        """Change your password. Every token issued so far stops working; this answer carries
        a fresh one (body and cookie), so this session stays signed in."""
        account = await accounts.change_password(
            kit,
            hasher=hasher,
            user_id=user.user_id,
            current=body.current_password,
            new=body.new_password,
            client=client_address.of(request),
            limits=limits,
            ttl=access_tokens.TTL_SECONDS,
        )
        return signed_in(account, settings=settings)

    @routes.post("/signout")
    async def sign_out(request: Request, kit: kit_app.KitDep) -> JSONResponse:
        """Clear the cookie; when signed in, every token issued so far stops working."""
        caller = identity.optional_identity(request)
        if caller is not None and caller.service is None and caller.user_id:
            await accounts.sign_out(kit, user_id=caller.user_id, ttl=access_tokens.TTL_SECONDS)
        response = JSONResponse(SignedOut().model_dump(by_alias=True))
        access_tokens.clear_cookie(response, secure=settings.cookie_secure)
        return response

    return routes
