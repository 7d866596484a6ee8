"""auth: `/api/auth` — sign up, sign in, sign out, change password and the current user."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from rhime import events
from rhime.auth import accounts, attempts, internal, me, passwords, registration, sessions
from rhime.auth.settings import Settings
from rhime.kit import app as kit_app
from rhime.kit import bus

# tests and the catalogue find the settings here, beside `create`
__all__ = ["PREFIX", "Settings", "create"]

PREFIX = "/api/auth"


def create(settings: Settings) -> FastAPI:
    hasher = hasher_of(settings)
    limits = limits_of(settings)
    return kit_app.create_app(
        settings,
        title="auth",
        description="Sign up, sign in, sign out and the current user.",
        database="auth",
        api_prefix=PREFIX,
        routers=[
            registration.router(hasher=hasher),
            sessions.router(settings=settings, hasher=hasher, limits=limits),
            me.router(cookie_secure=settings.cookie_secure, hasher=hasher, limits=limits),
            internal.router(),
        ],
        indexes=accounts.INDEXES,
        outboxes=[accounts.USERS],
        subscriptions=subscriptions,
    )


def hasher_of(settings: Settings) -> passwords.Hasher:
    # one per app: its semaphore bounds the hashes this process computes at once
    return passwords.Hasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        concurrency=settings.hash_concurrency,
        queue_limit=settings.hash_queue_limit,
    )


def limits_of(settings: Settings) -> attempts.Limits:
    return attempts.Limits(
        per_account=settings.signin_max_failures,
        per_client=settings.signin_client_max_failures,
        window_seconds=settings.signin_window_seconds,
    )


def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
    async def on_authorized(event: events.UserAuthorized) -> None:
        await accounts.spotify_changed(kit, event=event)

    async def on_disconnected(event: events.UserDisconnected) -> None:
        await accounts.spotify_changed(kit, event=event)

    return [
        bus.Subscription(event=events.UserAuthorized, handler=on_authorized),
        bus.Subscription(event=events.UserDisconnected, handler=on_disconnected),
    ]
