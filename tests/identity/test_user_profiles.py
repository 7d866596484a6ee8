"""user over HTTP with a real S3 API (moto_server), called directly with forwarded identity."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
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
    make_settings: Callable[..., Any],
    serve: Any,
    s3_url: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    settings = make_settings(
        user_app.Settings,
        component="user",
        s3_endpoint_url=s3_url,
        s3_bucket="b" + make_settings().namespace,
        **getattr(request, "param", {}),
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
    event = events.UserCreated(id=f"user.created:{uid}", user_id=uid, user_name=name)
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


async def upload(
    users: httpx.AsyncClient, uid: str, *, content_type: str = "image/png"
) -> dict[str, Any]:
    r = await users.put(
        f"/api/users/{uid}/image", json={"contentType": content_type}, headers=auth_headers(uid)
    )
    assert r.status_code == 200, r.text
    grant: dict[str, Any] = r.json()
    return grant


async def post_form(grant: dict[str, Any], data: bytes, *, content_type: str) -> httpx.Response:
    """What a browser does with the grant: a multipart POST of its fields and the file."""
    fields = {**grant["fields"], "Content-Type": content_type}
    async with httpx.AsyncClient() as browser:
        return await browser.post(
            grant["url"], data=fields, files={"file": ("image", data, content_type)}
        )


def s3_of(users: httpx.AsyncClient) -> tuple[Any, str]:
    s3 = boto3.client("s3", endpoint_url=users.s3_url, region_name="eu-west-1")  # type: ignore[attr-defined]
    return s3, users.bucket  # type: ignore[attr-defined]


async def test_profile_image_upload_confirm_delete(users: httpx.AsyncClient) -> None:
    uid = await created(users)
    me = auth_headers(uid)
    grant = await upload(users, uid)
    assert grant["key"].startswith(f"pending/{uid}/")
    assert grant["key"].endswith(".png")
    assert grant["expiresIn"] == 120
    # not uploaded yet: nothing stored
    r = await users.post(f"/api/users/{uid}/image/confirm", json={"key": grant["key"]}, headers=me)
    assert r.status_code == 400
    assert r.json()["errors"][0]["msg"] == "The image has not been uploaded."
    sent = await post_form(grant, b"\x89PNG fake", content_type="image/png")
    assert sent.status_code == 204, sent.text
    r = await users.post(f"/api/users/{uid}/image/confirm", json={"key": grant["key"]}, headers=me)
    assert r.status_code == 200, r.text
    url = r.json()["profileImage"]
    public_key = grant["key"].removeprefix("pending/")
    assert url.endswith("/" + public_key)
    s3, bucket = s3_of(users)
    stored = await asyncio.to_thread(s3.get_object, Bucket=bucket, Key=public_key)
    assert stored["Body"].read() == b"\x89PNG fake"
    # confirmed: moved out of the pending prefix
    with pytest.raises(botocore.exceptions.ClientError):
        await asyncio.to_thread(s3.head_object, Bucket=bucket, Key=grant["key"])
    # someone else's key, or a key outside the pending prefix, is refused
    for key in (f"pending/{ObjectId()}/x.png", public_key, f"pending/{uid}/a/b.png"):
        r = await users.post(f"/api/users/{uid}/image/confirm", json={"key": key}, headers=me)
        assert r.status_code == 400, key
    r = await users.delete(f"/api/users/{uid}/image", headers=me)
    assert r.status_code == 200
    assert r.json()["profileImage"] == profiles.DEFAULT_AVATAR
    with pytest.raises(botocore.exceptions.ClientError):
        await asyncio.to_thread(s3.head_object, Bucket=bucket, Key=public_key)


async def test_the_upload_policy_bounds_size_type_and_time(users: httpx.AsyncClient) -> None:
    uid = await created(users)
    grant = await upload(users, uid, content_type="image/webp")
    assert grant["maxBytes"] == 5_000_000
    policy = json.loads(base64.b64decode(grant["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 5_000_000] in conditions
    assert {"Content-Type": "image/webp"} in conditions
    assert {"key": grant["key"]} in conditions
    expires = datetime.datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    left = expires - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(0) < left <= datetime.timedelta(seconds=grant["expiresIn"])


@pytest.mark.parametrize("users", [{"max_image_bytes": 5000}], indirect=True)
@pytest.mark.parametrize(
    ("data", "content_type"),
    [(b"\x89PNG" + b"x" * 6000, "image/png"), (b"<html>hosted</html>", "text/html")],
)
async def test_an_upload_past_the_policy_is_refused_and_removed_at_confirm(
    users: httpx.AsyncClient, data: bytes, content_type: str
) -> None:
    # S3 checks the policy first; moto does not, so here the confirm step stands alone
    uid = await created(users)
    grant = await upload(users, uid)
    sent = await post_form(grant, data, content_type=content_type)
    assert sent.status_code == 204, sent.text
    r = await users.post(
        f"/api/users/{uid}/image/confirm", json={"key": grant["key"]}, headers=auth_headers(uid)
    )
    assert r.status_code == 400, r.text
    assert r.json()["errors"] == [
        {"msg": "Use a JPEG, PNG or WebP image up to 0.005 MB.", "field": "key"}
    ]
    s3, bucket = s3_of(users)
    with pytest.raises(botocore.exceptions.ClientError):
        await asyncio.to_thread(s3.head_object, Bucket=bucket, Key=grant["key"])
    r = await users.get(f"/api/users/{uid}", headers=auth_headers(uid))
    assert r.json()["profileImage"] == profiles.DEFAULT_AVATAR


async def test_unconfirmed_uploads_expire_by_a_lifecycle_rule(users: httpx.AsyncClient) -> None:
    s3, bucket = s3_of(users)
    found = await asyncio.to_thread(s3.get_bucket_lifecycle_configuration, Bucket=bucket)
    rules = [r for r in found["Rules"] if r["Status"] == "Enabled"]
    assert [(r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in rules] == [("pending/", 1)]


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


async def test_a_deleted_account_takes_its_profile_and_pictures(users: httpx.AsyncClient) -> None:
    """`user.deleted` (twice): the profile, the confirmed picture and a pending upload go;
    another person's picture stays."""
    uid, other = await created(users), await created(users, "bo")
    for who in (uid, other):
        grant = await upload(users, who)
        assert (await post_form(grant, b"\x89PNG x", content_type="image/png")).status_code == 204
        r = await users.post(
            f"/api/users/{who}/image/confirm", json={"key": grant["key"]}, headers=auth_headers(who)
        )
        assert r.status_code == 200, r.text
    pending = await upload(users, uid)
    assert (await post_form(pending, b"\x89PNG y", content_type="image/png")).status_code == 204
    s3, bucket = s3_of(users)

    async def keys() -> list[str]:
        listed = await asyncio.to_thread(s3.list_objects_v2, Bucket=bucket)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    assert [k for k in await keys() if uid in k] != []
    bus = users.app.state.kit.require_bus()  # type: ignore[attr-defined]
    deleted = events.UserDeleted(id=f"user.deleted:{uid}", user_id=uid)
    for _ in range(2):
        await bus.js.publish(bus.subject(deleted.SUBJECT), deleted.model_dump_json().encode())
    for _ in range(200):
        r = await users.get(f"/api/users/{uid}", headers=auth_headers(other))
        if r.status_code == 404 and not [k for k in await keys() if uid in k]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"left behind: {r.status_code} {await keys()}")
    assert [k for k in await keys() if other in k]
    assert (await users.get(f"/api/users/{other}", headers=auth_headers(other))).status_code == 200
