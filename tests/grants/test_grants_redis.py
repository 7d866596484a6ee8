"""Each component's Redis user writes its own keys only (real Redis, as the platform runs it:
rules from the catalogue, passwords from a seed); nobody gets in without a password."""

from __future__ import annotations

import secrets
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

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


def test_scripts_and_transactions_survive_a_restart_of_an_append_only_redis(
    tmp_path: Path,
) -> None:
    """The managed Redis keeps an append-only log and the platform's users. Redis replays
    the log as the default user and checks ACLs again at each EXEC, so the writes of every
    Lua script and MULTI (like count transitions, rq's job moves) must replay under it."""
    access = grants.Access(seed=secrets.token_urlsafe(16), namespace="aof", admin=True)
    port = servers.free_port()
    (tmp_path / "users.acl").write_text(access.redis_acl())
    command = [
        *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)),
        *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
        *("--aclfile", str(tmp_path / "users.acl")),
    ]
    url = f"redis://127.0.0.1:{port}/0"

    def start() -> subprocess.Popen[bytes]:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        ready = servers._redis_ready(port)
        deadline = time.monotonic() + 10
        while not ready():
            assert server.poll() is None, "redis exited"
            assert time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        return server

    server = start()
    try:
        client = redis.Redis.from_url(access.url(url, user="like-batch-updater"))
        state, pending = "aof:likes:{p1}:state", "aof:likes:{p1}:pending"
        script = "redis.call('HSET', KEYS[1], 'u1', '7:1') return redis.call('INCRBY', KEYS[2], 1)"
        assert client.eval(script, 2, state, pending) == 1
        with client.pipeline(transaction=True) as multi:
            multi.incrby(pending, 1)
            multi.sadd("aof:likes:dirty", "p1")
            multi.execute()
        client.close()
        server.kill()  # as a force-deleted pod: no shutdown, only what the log holds
        server.wait()
        server = start()
        admin = redis.Redis.from_url(access.url(url, user=grants.ADMIN))
        assert admin.hgetall(state) == {b"u1": b"7:1"}
        assert admin.get(pending) == b"2"
        assert admin.smembers("aof:likes:dirty") == {b"p1"}
        admin.close()
        # the default user stays closed to clients
        anonymous = redis.Redis(host="127.0.0.1", port=port)
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.get(state)
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port, username="default", password="x").ping()
    finally:
        server.kill()
        server.wait()


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
