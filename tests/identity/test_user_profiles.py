"""user over HTTP with a real S3 API (moto_server), called directly with forwarded identity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import boto3
import botocore.exceptions
import httpx
import pytest
from bson import ObjectId

from rhime import events
from rhime.kit import identity
from rhime.user import app as user_app
from rhime.user import profiles
from tests.support import SECRET, auth_headers


@pytest.fixture
async def users(
    make_settings: Callable[..., Any], serve: Any, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    settings = make_settings(
        user_app.Settings,
        component="user",
        s3_endpoint_url=s3_url,
        s3_bucket="b" + make_settings().namespace,
    )
    served = await serve(user_app.create(settings))
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        client.app = served.app  # type: ignore[attr-defined]
        client.s3_url = s3_url  # type: ignore[attr-defined]
        client.bucket = settings.s3_bucket  # type: ignore[attr-defined]
        yield client


async def created(client: httpx.AsyncClient, name: str = "ana") -> str:
    """Publish user.created twice (a redelivery) and wait for the one profile."""
    uid = str(ObjectId())
    kit = client.app.state.kit  # type: ignore[attr-defined]
    bus = kit.require_bus()
    event = events.UserCreated(
        id=f"user.created:{uid}", user_id=uid, user_name=name, email=f"{name}@example.com"
    )
    for _ in range(2):
        await bus.js.publish(bus.subject(event.SUBJECT), event.model_dump_json().encode())
    for _ in range(200):
        if (await client.get(f"/api/users/{uid}", headers=auth_headers(uid))).status_code == 200:
            return uid
        await asyncio.sleep(0.05)
    raise AssertionError("profile never created")


async def test_profile_from_user_created(users: httpx.AsyncClient) -> None:
    uid = await created(users)
    first = (await users.get(f"/api/users/{uid}", headers=auth_headers(uid))).json()
    await asyncio.sleep(0.3)  # the duplicate delivery must not rename anyone
    r = await users.get(f"/api/users/{uid}", headers=auth_headers(str(ObjectId())))
    assert r.status_code == 200
    body = r.json()
    assert body == first
    assert body["userId"] == uid
    assert body["userName"] == "ana"
    assert body["firstName"].isalpha()
    assert body["profileImage"] == profiles.DEFAULT_AVATAR
    assert "email" not in body
    kit = users.app.state.kit  # type: ignore[attr-defined]
    assert await kit.database[profiles.PROFILES].count_documents({"_id": uid}) == 1


async def test_patch_own_profile(users: httpx.AsyncClient) -> None:
    uid = await created(users)
    r = await users.patch(
        f"/api/users/{uid}",
        json={"firstName": "Ana", "lastName": "Lima", "bio": " hi ", "age": 30, "gender": "female"},
        headers=auth_headers(uid),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["firstName"], body["lastName"], body["bio"], body["age"], body["gender"]) == (
        "ana",
        "lima",
        "hi",
        30,
        "female",
    )
    r = await users.patch(
        f"/api/users/{uid}", json={"firstName": "ana", "lastName": ""}, headers=auth_headers(uid)
    )
    assert r.json()["lastName"] == ""
    assert r.json()["age"] == 30


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "firstName"),
        ({"firstName": "a"}, "firstName"),
        ({"firstName": "x" * 26}, "firstName"),
        ({"firstName": "an4"}, "firstName"),
        ({"firstName": "ana", "lastName": "l1ma"}, "lastName"),
        ({"firstName": "ana", "lastName": "x" * 26}, "lastName"),
        ({"firstName": "ana", "bio": "x" * 151}, "bio"),
        ({"firstName": "ana", "age": 10}, "age"),
        ({"firstName": "ana", "age": 101}, "age"),
        ({"firstName": "ana", "gender": "other"}, "gender"),
    ],
)
async def test_patch_validation(users: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    uid = await created(users)
    before = (await users.get(f"/api/users/{uid}", headers=auth_headers(uid))).json()
    r = await users.patch(f"/api/users/{uid}", json=body, headers=auth_headers(uid))
    assert r.status_code == 400, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert (await users.get(f"/api/users/{uid}", headers=auth_headers(uid))).json() == before


async def test_auth_ids_and_ownership(users: httpx.AsyncClient) -> None:
    uid = await created(users)
    other = str(ObjectId())
    routes = [
        ("GET", f"/api/users/{uid}", None),
        ("PATCH", f"/api/users/{uid}", {"firstName": "ana"}),
        ("PUT", f"/api/users/{uid}/image", None),
        ("POST", f"/api/users/{uid}/image/confirm", {"key": f"{uid}/x.jpeg"}),
        ("DELETE", f"/api/users/{uid}/image", None),
    ]
    expired = {
        identity.HEADER: identity.encode(identity.Identity(user_id=uid), secret=SECRET, ttl=-5)
    }
    forged = auth_headers(uid, secret="someone-else-secret-0123456789-abcdefghij")
    for method, path, body in routes:
        for headers in ({}, expired, forged):
            r = await users.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (method, path)
        bad = path.replace(uid, "nope")
        r = await users.request(method, bad, json=body, headers=auth_headers(uid))
        assert r.status_code == 400
        assert r.json() == {"errors": [{"msg": "Invalid userId", "field": "userId"}]}
        if method != "GET":
            r = await users.request(method, path, json=body, headers=auth_headers(other))
            assert r.status_code == 403, (method, path)
    missing = str(ObjectId())
    r = await users.get(f"/api/users/{missing}", headers=auth_headers(uid))
    assert r.status_code == 404
    r = await users.patch(
        f"/api/users/{missing}", json={"firstName": "ana"}, headers=auth_headers(missing)
    )
    assert r.status_code == 404


async def test_profile_image_upload_confirm_delete(users: httpx.AsyncClient) -> None:
    uid = await created(users)
    me = auth_headers(uid)
    r = await users.put(f"/api/users/{uid}/image", json={"contentType": "image/png"}, headers=me)
    assert r.status_code == 200, r.text
    upload = r.json()
    assert upload["key"].startswith(f"{uid}/")
    assert upload["key"].endswith(".png")
    assert upload["expiresIn"] == 300
    # not uploaded yet: nothing stored
    r = await users.post(f"/api/users/{uid}/image/confirm", json={"key": upload["key"]}, headers=me)
    assert r.status_code == 400
    assert r.json()["errors"][0]["msg"] == "The image has not been uploaded."
    async with httpx.AsyncClient() as browser:
        put = await browser.put(
            upload["url"], content=b"\x89PNG fake", headers={"content-type": "image/png"}
        )
        assert put.status_code == 200, put.text
    r = await users.post(f"/api/users/{uid}/image/confirm", json={"key": upload["key"]}, headers=me)
    assert r.status_code == 200, r.text
    url = r.json()["profileImage"]
    assert url.endswith(upload["key"])
    s3 = boto3.client("s3", endpoint_url=users.s3_url, region_name="eu-west-1")  # type: ignore[attr-defined]
    bucket = users.bucket  # type: ignore[attr-defined]
    stored = await asyncio.to_thread(s3.get_object, Bucket=bucket, Key=upload["key"])
    assert stored["Body"].read() == b"\x89PNG fake"
    # someone else's key is refused
    r = await users.post(
        f"/api/users/{uid}/image/confirm", json={"key": f"{ObjectId()}/x.png"}, headers=me
    )
    assert r.status_code == 400
    r = await users.delete(f"/api/users/{uid}/image", headers=me)
    assert r.status_code == 200
    assert r.json()["profileImage"] == profiles.DEFAULT_AVATAR
    with pytest.raises(botocore.exceptions.ClientError):
        await asyncio.to_thread(s3.head_object, Bucket=bucket, Key=upload["key"])


async def test_author_cards_are_internal(users: httpx.AsyncClient) -> None:
    a = await created(users, "ana")
    b = await created(users, "bob")
    service = {
        identity.HEADER: identity.encode(
            identity.Identity(user_id="", service="feed"), secret=SECRET
        )
    }
    missing = str(ObjectId())
    r = await users.post("/internal/users/cards", json={"ids": [a, b, missing, a]}, headers=service)
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert set(cards) == {a, b}
    assert cards[b]["userName"] == "bob"
    assert cards[b]["profileImage"] == profiles.DEFAULT_AVATAR
    assert cards[b]["displayName"]
    r = await users.post("/internal/users/cards", json={"ids": [a]}, headers=auth_headers(a))
    assert r.status_code == 403
    assert (await users.post("/internal/users/cards", json={"ids": [a]})).status_code == 401
    r = await users.post("/internal/users/cards", json={"ids": [a] * 101}, headers=service)
    assert r.status_code == 400
