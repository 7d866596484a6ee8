"""user-graph: `/api/graph` — follow, unfollow, lists, counts and relationships."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rhime import events
from rhime.graph import blocks, edges, follows
from rhime.kit import app as kit_app
from rhime.kit import bus, identity, ids
from rhime.kit.settings import Settings as KitSettings

PREFIX = "/api/graph"


class Settings(KitSettings):
    pass


class Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Following(Out):
    following: bool = Field(description="Whether the caller now follows the user.")


class Relationship(Out):
    following: bool = Field(description="The caller follows the user.")
    followed_by: bool = Field(description="The user follows the caller.")
    blocking: bool = Field(description="The caller blocks the user.")


class Blocking(Out):
    blocking: bool = Field(description="Whether the caller now blocks the user.")


class Counts(Out):
    followers: int
    following: int


class Page(Out):
    user_ids: list[str] = Field(description=f"Up to {edges.PAGE} ids, ascending.")
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


def user_id_path(user_id: Annotated[str, Path(alias="userId")]) -> str:
    return ids.object_id(user_id, what="userId")


def after_query(after: Annotated[str | None, Query()] = None) -> str | None:
    return None if after is None else ids.object_id(after, what="after")


UserId = Annotated[str, Depends(user_id_path)]
After = Annotated[str | None, Depends(after_query)]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid userId or cursor"},
    401: {"description": "Not signed in"},
    404: {"description": "No such user"},
}


def create(settings: Settings) -> FastAPI:
    router = APIRouter(prefix=PREFIX, tags=["graph"], responses=ERRORS)
    internal = APIRouter(prefix="/internal/graph", tags=["internal"])

    @internal.get("/export/{user_id}")
    async def export(
        user_id: str, _: identity.Service, kit: kit_app.KitDep
    ) -> dict[str, list[str]]:
        """Whom the user follows and who follows them, for their data export (components
        only)."""
        return await follows.export(kit, user_id=user_id)

    @router.put("/following/{userId}", responses={403: {"description": "Yourself"}})
    async def follow(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Following:
        """Follow the user. Idempotent: following again changes nothing."""
        now = await follows.set_following(kit, follower=user.user_id, followee=user_id, active=True)
        return Following(following=now)

    @router.delete("/following/{userId}", responses={403: {"description": "Yourself"}})
    async def unfollow(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Following:
        """Stop following the user. Idempotent."""
        now = await follows.set_following(
            kit, follower=user.user_id, followee=user_id, active=False
        )
        return Following(following=now)

    @router.get("/relationship/{userId}", responses={403: {"description": "Yourself"}})
    async def relationship(
        user: identity.User, user_id: UserId, kit: kit_app.KitDep
    ) -> Relationship:
        """Whether you follow the user and whether the user follows you."""
        following, followed_by, blocking = await follows.relationship(
            kit, caller=user.user_id, target=user_id
        )
        return Relationship(following=following, followed_by=followed_by, blocking=blocking)

    @router.put("/blocks/{userId}", responses={403: {"description": "Yourself"}})
    async def block(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Blocking:
        """Block the user: neither of you can follow the other (follows both ways end), see
        the other's posts, comment on or like them, find the other in search, or be
        recommended to the other. Idempotent."""
        now = await follows.set_blocking(kit, blocker=user.user_id, blocked=user_id, active=True)
        return Blocking(blocking=now)

    @router.delete("/blocks/{userId}", responses={403: {"description": "Yourself"}})
    async def unblock(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Blocking:
        """Lift your block (the follows it ended stay ended). Idempotent."""
        now = await follows.set_blocking(kit, blocker=user.user_id, blocked=user_id, active=False)
        return Blocking(blocking=now)

    @router.get("/blocks")
    async def blocked(user: identity.User, after: After, kit: kit_app.KitDep) -> Page:
        """Whom I block, 20 per page, by id (keyset: pass `next` as `after`)."""
        ids, cursor = await follows.blocked_page(kit, blocker=user.user_id, after=after)
        return Page(user_ids=ids, next=cursor)

    @router.get("/users/{userId}/counts")
    async def counts(user: identity.User, user_id: UserId, kit: kit_app.KitDep) -> Counts:
        """Follower and following counts."""
        found = await follows.counts(kit, user_id=user_id)
        return Counts(followers=found.followers, following=found.following)

    @router.get("/users/{userId}/followers")
    async def followers(
        user: identity.User, user_id: UserId, after: After, kit: kit_app.KitDep
    ) -> Page:
        """Who follows the user, 20 per page, by id (keyset: pass `next` as `after`)."""
        ids, cursor = await follows.page(kit, user_id=user_id, direction="followers", after=after)
        return Page(user_ids=ids, next=cursor)

    @router.get("/users/{userId}/following")
    async def following(
        user: identity.User, user_id: UserId, after: After, kit: kit_app.KitDep
    ) -> Page:
        """Whom the user follows, 20 per page, by id (keyset: pass `next` as `after`)."""
        ids, cursor = await follows.page(kit, user_id=user_id, direction="following", after=after)
        return Page(user_ids=ids, next=cursor)

    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        async def on_user_created(event: events.UserCreated) -> None:
            await edges.add_user(kit.database, user_id=event.user_id, user_name=event.user_name)

        async def on_user_deleted(event: events.UserDeleted) -> None:
            await follows.forget_all(kit, user_id=event.user_id)

        async def on_user_blocked(event: events.UserBlocked) -> None:
            await follows.end_follows(kit, a=event.blocker_id, b=event.blocked_id)

        return [
            bus.Subscription(event=events.UserCreated, handler=on_user_created),
            # many follows take a while; what a timeout interrupts, a redelivery finishes
            bus.Subscription(event=events.UserDeleted, handler=on_user_deleted, ack_wait=90.0),
            bus.Subscription(event=events.UserBlocked, handler=on_user_blocked),
        ]

    return kit_app.create_app(
        settings,
        title="user-graph",
        description="Follow and unfollow; follower and following lists, counts, relationships.",
        database="graph",
        api_prefix=PREFIX,
        routers=[router, internal],
        indexes={**edges.INDEXES, **blocks.INDEXES},
        outboxes=[edges.EDGES, blocks.BLOCKS],
        subscriptions=subscriptions,
        tasks=[follows.settle_forever],
    )
