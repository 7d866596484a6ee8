"""Each component's Redis user writes its own keys only (real Redis, as the platform runs it:
rules from the catalogue, passwords from a seed); nobody gets in without a password."""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.exceptions

from rhime import catalogue, grants
from rhime.kit.settings import Settings
from rhime.recommendation import jobs
from rhime.runtime import servers
from tests.support import SECRET

REDIS_USERS = [c for c in catalogue.COMPONENTS if grants.uses(c, catalogue.Backing.REDIS)]


def _sample(pattern: str) -> str:
    return pattern.replace("*", "x1")


@pytest.fixture
def connect(runtime: servers.Runtime, namespace: str) -> Iterator[Callable[[str], redis.Redis]]:
    """`connect(component)`: a client logged in as that component's user (added for this
    test's namespace with the rules the platform gives it)."""
    admin = redis.Redis.from_url(runtime.urls["redis"])
    access = grants.Access(seed=secrets.token_urlsafe(16), namespace=namespace)
    added: list[str] = []

    def connect(component: str) -> redis.Redis:
        user = f"{namespace}-{component}"
        rules = grants.redis_rules(catalogue.get(component), namespace=namespace)
        admin.acl_setuser(user, reset=True)  # a clean slate, then the platform's rules
        setuser = ("ACL", "SETUSER", user, "on", f">{access.password(user)}", *rules)
        admin.execute_command(*setuser)  # type: ignore[no-untyped-call]
        added.append(user)
        return redis.Redis.from_url(access.url(runtime.urls["redis"], user=user))

    yield connect
    for user in added:
        admin.acl_deluser(user)
    admin.close()


def test_an_unauthenticated_connection_is_refused(runtime: servers.Runtime) -> None:
    url = urllib.parse.urlsplit(runtime.urls["redis"])
    anonymous = redis.Redis(host=url.hostname or "", port=url.port or 0)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.set("rhime:rate:ip:1", 1)
    wrong = redis.Redis(
        host=url.hostname or "", port=url.port or 0, username="gateway", password="x"
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()


@pytest.mark.parametrize("component", [c.name for c in REDIS_USERS])
def test_a_component_writes_its_own_keys_and_no_one_elses(
    component: str, namespace: str, connect: Callable[[str], redis.Redis]
) -> None:
    client = connect(component)
    own = catalogue.get(component).redis_keys
    for pattern in own:
        key = f"{namespace}:{_sample(pattern)}"
        assert client.set(key, "1")
        assert client.get(key) == b"1"
    others = {p for c in REDIS_USERS for p in c.redis_keys} - set(own)
    assert others
    for pattern in others:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set(f"{namespace}:{_sample(pattern)}", "1")
    # nor another deployment's keys, nor rq's unless it runs or feeds the queue, nor all keys
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set(f"other{namespace}:{_sample((*own, 'feed:*')[0])}", "1")
    if not catalogue.get(component).rq:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.lpush("rq:queue:rhime-music", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.keys("*")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()


def test_the_gateway_reads_sign_outs_but_cannot_undo_one(
    namespace: str, connect: Callable[[str], redis.Redis]
) -> None:
    key = f"{namespace}:signed-out:u1"
    assert connect("auth").set(key, "1700000000000")
    gateway = connect("gateway")
    assert gateway.get(key) == b"1700000000000"
    with pytest.raises(redis.exceptions.NoPermissionError):
        gateway.set(key, "0")
    with pytest.raises(redis.exceptions.NoPermissionError):
        gateway.delete(key)


def _settings(namespace: str, url: str) -> Settings:
    return Settings(namespace=namespace, redis_url=url, internal_secret=SECRET)


@pytest.mark.parametrize("component", [c.name for c in REDIS_USERS])
def test_only_the_components_that_feed_the_queue_may_enqueue(
    component: str, namespace: str, connect: Callable[[str], redis.Redis]
) -> None:
    client = connect(component)
    settings = _settings(namespace, "redis://unused")
    user_id = "u" + secrets.token_hex(6)
    if catalogue.get(component).rq:
        assert jobs.enqueue_initial(client, settings=settings, user_id=user_id)
    else:
        with pytest.raises(redis.exceptions.NoPermissionError):
            jobs.enqueue_initial(client, settings=settings, user_id=user_id)
