"""auth: `/api/auth` — sign up, sign in, sign out, change password and the current user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from rhime import events
from rhime.auth import accounts, attempts, passwords, rules
from rhime.kit import access_tokens, bus, client_address, identity
from rhime.kit import app as kit_app
from rhime.kit.settings import Settings as KitSettings

PREFIX = "/api/auth"


class Settings(KitSettings):
    access_token_secret: SecretStr = Field(
        min_length=32,
        description="HS256 key that signs access tokens; the gateway verifies with the same "
        "(Secret `auth`)",
    )
    cookie_secure: bool = Field(
        default=True,
        description="mark the `accessToken` cookie Secure (false only for plain-HTTP local runs)",
    )
    # argon2id at one of OWASP's equivalent profiles (46 MiB, t=1, p=1): two hashes at once
    # take 92 MiB, well inside the auth container's 384 Mi next to the process itself
    argon2_time_cost: int = Field(
        default=1, ge=1, description="argon2id passes over memory per password hash"
    )
    argon2_memory_kib: int = Field(
        default=47104,
        ge=8,
        description="argon2id memory per password hash, in KiB; times `hash_concurrency` it "
        "should stay under about 40 % of the container's memory limit",
    )
    argon2_parallelism: int = Field(
        default=1, ge=1, description="argon2id lanes (threads) per password hash"
    )
    hash_concurrency: int = Field(
        default=2,
        ge=1,
        description="password hashes computed at once per process; bounds CPU and memory "
        "(each takes the argon2 memory)",
    )
    hash_queue_limit: int = Field(
        default=16,
        ge=0,
        description="sign-ups and sign-ins waiting for a hashing slot per process; past it "
        "they get 503 with Retry-After at once",
    )
    signin_max_failures: int = Field(
        default=5,
        ge=1,
        description="failed sign-ins of one login (name or email) from one client before "
        "that client's further tries on it get 429 until the window ends",
    )
    signin_client_max_failures: int = Field(
        default=50,
        ge=1,
        description="failed sign-ins from one client, whatever the login, before its further "
        "tries get 429 until the window ends",
    )
    signin_window_seconds: int = Field(
        default=900,
        ge=1,
        description="seconds failed sign-ins are counted, from the first failure",
    )


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SignUp(Model):
    user_name: str = Field(examples=["ana.music"])
    email: str = Field(examples=["ana@example.com"])
    password: str = Field(examples=["s3cret!pw"])

    _user_name = field_validator("user_name")(rules.user_name)
    _email = field_validator("email")(rules.email)
    _password = field_validator("password")(rules.password)


class SignIn(Model):
    user_name: str | None = Field(default=None, max_length=254, description="userName or email")
    email: str | None = Field(default=None, max_length=254)
    password: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _login(self) -> SignIn:
        if not (self.user_name or self.email):
            raise ValueError("userName or email is required")
        return self


class PasswordChange(Model):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(examples=["n3w!secret"])

    _new_password = field_validator("new_password")(rules.password)


class DeleteAccount(Model):
    password: str = Field(min_length=1, max_length=200, description="The current password.")


class UserOut(Model):
    user_id: str
    user_name: str
    email: str
    spotify: bool = Field(description="Spotify is connected.")


class SignedIn(UserOut):
    access_token: str = Field(description="Also set as the httpOnly `accessToken` cookie.")
    expires_at: int = Field(description="Unix time (seconds) when the token expires.")


class SignedOut(Model):
    signed_out: bool = True


def _out(account: accounts.Account) -> dict[str, Any]:
    return {
        "user_id": account.user_id,
        "user_name": account.user_name,
        "email": account.email,
        "spotify": account.spotify,
    }


class Ids(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(max_length=100)


def create(settings: Settings) -> FastAPI:
    router = APIRouter(prefix=PREFIX, tags=["auth"])
    internal = APIRouter(prefix="/internal/auth", tags=["internal"])
    hasher = passwords.Hasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        concurrency=settings.hash_concurrency,
        queue_limit=settings.hash_queue_limit,
    )
    limits = attempts.Limits(
        per_account=settings.signin_max_failures,
        per_client=settings.signin_client_max_failures,
        window_seconds=settings.signin_window_seconds,
    )

    @router.post(
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
        return UserOut(**_out(account))

    def signed_in(account: accounts.Account) -> JSONResponse:
        """The account with a new token, in the body and as the cookie."""
        token, claims = access_tokens.issue(
            user_id=account.user_id,
            user_name=account.user_name,
            spotify=account.spotify,
            secret=settings.access_token_secret.get_secret_value(),
        )
        out = SignedIn(**_out(account), access_token=token, expires_at=claims.expires_at)
        response = JSONResponse(out.model_dump(by_alias=True))
        access_tokens.set_cookie(
            response, token, secure=settings.cookie_secure, max_age=access_tokens.TTL_SECONDS
        )
        return response

    @router.post(
        "/signin",
        responses={
            400: {"description": "Wrong credentials"},
            429: {"description": "Too many failed attempts"},
            503: {"description": "Too many sign-ins at once"},
        },
    )
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
        return signed_in(account)

    @router.post(
        "/password",
        responses={
            400: {"description": "Wrong current password, or a new one the rules refuse"},
            401: {"description": "Not signed in"},
            429: {"description": "Too many failed attempts"},
            503: {"description": "Too many at once"},
        },
    )
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
        return signed_in(account)

    @router.post("/signout")
    async def sign_out(request: Request, kit: kit_app.KitDep) -> JSONResponse:
        """Clear the cookie; when signed in, every token issued so far stops working."""
        caller = identity.optional_identity(request)
        if caller is not None and caller.service is None and caller.user_id:
            await accounts.sign_out(kit, user_id=caller.user_id, ttl=access_tokens.TTL_SECONDS)
        response = JSONResponse(SignedOut().model_dump(by_alias=True))
        access_tokens.clear_cookie(response, secure=settings.cookie_secure)
        return response

    @router.get("/me", responses={401: {"description": "Not signed in"}})
    async def me(user: identity.User, kit: kit_app.KitDep) -> UserOut:
        """The signed-in user (Spotify state fresh from the account, not from the token)."""
        return UserOut(**_out(await accounts.get(kit, user_id=user.user_id)))

    @router.delete(
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
        access_tokens.clear_cookie(response, secure=settings.cookie_secure)
        return response

    @internal.post("/names")
    async def names(
        body: Ids, _: identity.Service, kit: kit_app.KitDep
    ) -> dict[str, dict[str, str]]:
        """The userName of each live account among up to 100 ids (components only): for a
        component whose copy, fed by `user.created`, has not heard of a new person yet."""
        return {"names": await accounts.names(kit, ids=body.ids)}

    @internal.get("/export/{user_id}")
    async def export(user_id: str, _: identity.Service, kit: kit_app.KitDep) -> dict[str, Any]:
        """The account's part of its owner's data export (components only)."""
        return await accounts.export(kit, user_id=user_id)

    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        async def on_authorized(event: events.UserAuthorized) -> None:
            await accounts.spotify_changed(kit, event=event)

        async def on_disconnected(event: events.UserDisconnected) -> None:
            await accounts.spotify_changed(kit, event=event)

        return [
            bus.Subscription(event=events.UserAuthorized, handler=on_authorized),
            bus.Subscription(event=events.UserDisconnected, handler=on_disconnected),
        ]

    return kit_app.create_app(
        settings,
        title="auth",
        description="Sign up, sign in, sign out and the current user.",
        database="auth",
        api_prefix=PREFIX,
        routers=[router, internal],
        indexes=accounts.INDEXES,
        outboxes=[accounts.USERS],
        subscriptions=subscriptions,
    )
