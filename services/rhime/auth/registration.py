"""Sign up: a new account, signed in afterwards."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

from fastapi import APIRouter

from rhime.auth import accounts, passwords
from rhime.auth.models import SignUp, UserOut, fields
from rhime.kit import app as kit_app


def router(*, hasher: passwords.Hasher) -> APIRouter:
    routes = APIRouter(prefix="/api/auth", tags=["auth"])

    @routes.post(
        "/signup",
        status_code=201,
        responses={
            400: {"description": "Invalid or taken"},
            503: {"description": "Too many sign-ups at once"},
        },
    )
    async def sign_up(body: SignUp, kit: kit_app.KitDep) -> UserOut:
        """Create an account (userName and email must be unique). Sign in afterwards."""
        account = await accounts.sign_up(
            kit,
            hasher=hasher,
            user_name=body.user_name,
            email=body.email,
            password=body.password,
        )
        return UserOut(**fields(account))

    return routes
