"""A person who signed up a moment ago can be followed, blocked and have their profile read
before their `user.created` has reached user-graph and the user service: they ask auth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import bson
import httpx
import pytest

from rhime import events
from rhime.auth import app as auth_app
from rhime.graph import app as graph_app
from rhime.graph import edges
from rhime.user import app as user_app
from rhime.user import profiles
from tests.identity.test_auth_accounts import auth_settings
from tests.support import auth_headers, eventually

ANA = str(bson.ObjectId())


class World:
    def __init__(self, auth: Any, graph: Any, user: Any, http: httpx.AsyncClient) -> None:
        self.auth, self.graph, self.user, self.http = auth, graph, user, http
        self.graph_db = graph.app.state.kit.database

    async def signed_up_unannounced(self) -> str:
        """A live account in the auth service whose event has not gone out."""
        user_id = str(bson.ObjectId())
        await self.auth.app.state.kit.database["users"].insert_one(
            {
                "_id": user_id,
                "user_name": "new" + user_id[-6:],
                "user_name_key": "new" + user_id[-6:],
                "email": f"{user_id}@example.com",
                "password": "not a hash: nobody signs in here",
            }
        )
        return user_id

    async def follow(self, user_id: str) -> httpx.Response:
        return await self.http.put(
            f"{self.graph.url}/api/graph/following/{user_id}", headers=auth_headers(ANA)
        )

    async def block(self, user_id: str) -> httpx.Response:
        return await self.http.put(
            f"{self.graph.url}/api/graph/blocks/{user_id}", headers=auth_headers(ANA)
        )

    async def profile(self, user_id: str) -> httpx.Response:
        return await self.http.get(
            f"{self.user.url}/api/users/{user_id}", headers=auth_headers(ANA)
        )

    async def counts(self, user_id: str) -> httpx.Response:
        return await self.http.get(
            f"{self.graph.url}/api/graph/users/{user_id}/counts", headers=auth_headers(ANA)
        )


@pytest.fixture
async def world(
    make_settings: Callable[..., Any], serve: Any, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    auth = await serve(auth_app.create(auth_settings(make_settings)))
    urls = {"auth": auth.url}
    graph = await serve(
        graph_app.create(
            make_settings(graph_app.Settings, component="user-graph", service_urls=urls)
        )
    )
    user = await serve(
        user_app.create(
            make_settings(
                user_app.Settings,
                component="user",
                service_urls=urls,
                s3_endpoint_url=s3_url,
                s3_bucket="b" + make_settings().namespace,
            )
        )
    )
    await edges.add_user(graph.app.state.kit.database, user_id=ANA, user_name="ana")
    async with httpx.AsyncClient(timeout=10) as http:
        yield World(auth, graph, user, http)


async def test_a_new_person_can_be_followed_and_blocked_at_once(world: World) -> None:
    fresh = await world.signed_up_unannounced()
    r = await world.follow(fresh)
    assert r.status_code == 200, r.text
    r = await world.counts(fresh)
    assert r.json() == {"followers": 1, "following": 0}
    other = await world.signed_up_unannounced()
    r = await world.block(other)
    assert r.status_code == 200, r.text
    r = await world.profile(fresh)
    assert r.status_code == 200, r.text
    assert r.json()["userName"] == "new" + fresh[-6:]


async def test_an_unknown_person_is_still_not_found(world: World) -> None:
    nobody = str(bson.ObjectId())
    assert (await world.follow(nobody)).status_code == 404
    assert (await world.counts(nobody)).status_code == 404
    assert (await world.profile(nobody)).status_code == 404
    assert await world.graph_db[edges.USERS].find_one({"_id": nobody}) is None


async def test_a_deleted_person_is_not_written_back(world: World) -> None:
    fresh = await world.signed_up_unannounced()
    assert (await world.follow(fresh)).status_code == 200
    assert (await world.profile(fresh)).status_code == 200
    # the account is deleted, and its `user.deleted` reaches user-graph and the user service
    await world.auth.app.state.kit.database["users"].delete_one({"_id": fresh})
    bus = world.graph.app.state.kit.require_bus()
    await bus.publish(events.UserDeleted(id=f"user.deleted:{fresh}", user_id=fresh))

    async def forgotten() -> None:
        assert (await world.counts(fresh)).status_code == 404
        assert (await world.profile(fresh)).status_code == 404

    await eventually(forgotten)
    # a late `user.created`, or a lookup that answered before the deletion, changes nothing
    user_kit = world.user.app.state.kit
    assert not await edges.add_user(world.graph_db, user_id=fresh, user_name="x")
    assert not await profiles.create(user_kit, user_id=fresh, user_name="x")
    assert (await world.follow(fresh)).status_code == 404
    assert (await world.profile(fresh)).status_code == 404
    assert await world.graph_db[edges.USERS].find_one({"_id": fresh}) is None
    assert await user_kit.database[profiles.PROFILES].find_one({"_id": fresh}) is None
