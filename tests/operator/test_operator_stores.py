"""The managed Redis and NATS admit only per-component users: the operator renders their users
from the seed in its stores Secret and gives each component only its own URLs."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from typing import Any

import pytest

from rhime import catalogue, grants
from rhime_operator import names, render, spec, stores

NS = "prod"
SEED = "seed-one"


def _platform(raw: dict[str, Any] | None = None, *, seed: str = SEED) -> dict[Any, Any]:
    held = {
        "rhime-auth": {"RHIME_ACCESS_TOKEN_SECRET": "YQ=="},
        stores.secret_name(instance="rd"): {
            stores.SEED_KEY: base64.b64encode(seed.encode()).decode()
        },
        "redis-url": {"url": base64.b64encode(b"redis://u:p@ext:6379/0").decode()},
    }
    objs = render.render_platform(
        spec.parse(raw or {}, name="rd"), instance="rd", namespace=NS, secrets=held
    )
    return {render.key(o): o for o in objs}


def _stores(objs: dict[Any, Any]) -> dict[str, str]:
    data = objs["Secret", "rd-stores"]["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    template = obj["spec"].get("jobTemplate", {}).get("spec", obj["spec"])["template"]
    return dict(template)


@pytest.mark.parametrize(
    ("kind", "key", "args"),
    [
        ("redis", "users.acl", ["--aclfile", "/etc/rhime/users.acl"]),
        ("nats", "nats.conf", ["--config", "/etc/rhime/nats.conf"]),
    ],
)
def test_the_managed_server_reads_its_own_users_file_only(
    kind: str, key: str, args: list[str]
) -> None:
    pod = _pod(_platform()["StatefulSet", f"rd-{kind}"])
    (container,) = pod["spec"]["containers"]
    assert container["args"][-2:] == args
    assert {"name": "users", "mountPath": "/etc/rhime", "readOnly": True} in container[
        "volumeMounts"
    ]
    (users,) = [v for v in pod["spec"]["volumes"] if v["name"] == "users"]
    assert users["secret"]["secretName"] == "rd-stores"
    assert users["secret"]["items"] == [{"key": key, "path": key}]  # not the URLs
    assert pod["metadata"]["annotations"][names.CHECKSUM_ANNOTATION]
    mongo = _pod(_platform()["StatefulSet", "rd-mongo"])
    assert "annotations" not in mongo["metadata"]


def test_the_users_are_the_components_with_their_catalogue_rules() -> None:
    data = _stores(_platform())
    acl = data["users.acl"].splitlines()
    assert acl[0] == "user default off resetkeys resetchannels -@all"
    assert not any(grants.ADMIN in line for line in acl)  # a cluster has no all-powerful user
    redis_users = {c.name for c in catalogue.COMPONENTS if catalogue.Backing.REDIS in c.backing}
    by_user = {line.split()[1]: line.split() for line in acl[1:]}
    assert set(by_user) == redis_users
    for name, words in by_user.items():
        digest = grants.password(seed=SEED, user=name)
        assert words[2:4] == ["on", "#" + hashlib.sha256(digest.encode()).hexdigest()]
        assert words[4:] == grants.redis_rules(catalogue.get(name), namespace="rd")
    assert "~rd:signed-out:*" in by_user["auth"]
    assert "%R~rd:signed-out:*" in by_user["gateway"]
    assert "~rq:*" not in by_user["gateway"]

    users = json.loads(data["nats.conf"])["authorization"]["users"]
    nats_users = {c.name for c in catalogue.COMPONENTS if catalogue.Backing.NATS in c.backing}
    assert {u["user"] for u in users} == nats_users
    for user in users:
        assert user["password"] == grants.password(seed=SEED, user=user["user"])
        component = catalogue.get(user["user"])
        assert user["permissions"] == grants.nats_permissions(component, namespace="rd")
    post = next(u for u in users if u["user"] == "post")["permissions"]
    assert "rd.post.created" in post["publish"]["allow"]
    assert "rd.user.created" not in post["publish"]["allow"]


def test_each_component_gets_only_its_own_credentials() -> None:
    objs = _platform()
    data = _stores(objs)
    for c in catalogue.COMPONENTS:
        workload = objs[
            "CronJob" if c.kind is catalogue.Kind.CRON else "Deployment", f"rd-{c.name}"
        ]
        (container,) = _pod(workload)["spec"]["containers"]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container.get("env", [])
            if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "rd-stores"
        }
        for store, env in (("redis", "RHIME_REDIS_URL"), ("nats", "RHIME_NATS_URL")):
            if catalogue.Backing(store) not in c.backing:
                assert env not in refs
                continue
            assert refs[env]["key"] == f"{c.name}.{store}-url"
            url = urllib.parse.urlsplit(data[refs[env]["key"]])
            assert url.hostname == f"rd-{store}.{NS}.svc"
            assert url.username == c.name
            assert url.password == grants.password(seed=SEED, user=c.name)


def test_a_new_seed_rolls_the_servers_and_the_components_that_use_them() -> None:
    before, after = _platform(), _platform(seed="seed-two")
    assert _platform() == before  # pure: the same seed renders the same objects

    def checksum(objs: dict[Any, Any], kind: str, name: str) -> str:
        return str(_pod(objs[kind, name])["metadata"]["annotations"][names.CHECKSUM_ANNOTATION])

    for kind, name in (("StatefulSet", "rd-redis"), ("StatefulSet", "rd-nats")):
        assert checksum(before, kind, name) != checksum(after, kind, name)
    assert checksum(before, "Deployment", "rd-feed") != checksum(after, "Deployment", "rd-feed")
    # web uses neither store: it does not restart
    assert checksum(before, "Deployment", "rd-web") == checksum(after, "Deployment", "rd-web")


def test_an_external_redis_keeps_its_own_url_and_the_managed_nats_its_users() -> None:
    objs = _platform(
        {"infrastructure": {"redis": {"external": {"secretRef": {"name": "redis-url"}}}}}
    )
    assert ("StatefulSet", "rd-redis") not in objs
    data = _stores(objs)
    assert "users.acl" not in data
    assert "nats.conf" in data
    assert not any(k.endswith(".redis-url") for k in data)
    (container,) = _pod(objs["Deployment", "rd-feed"])["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["RHIME_REDIS_URL"] == {"name": "redis-url", "key": "url"}
    assert refs["RHIME_NATS_URL"] == {"name": "rd-stores", "key": "feed.nats-url"}


def test_without_a_seed_nothing_is_rendered() -> None:
    with pytest.raises(KeyError):
        render.render_platform(spec.parse({}, name="rd"), instance="rd", namespace=NS, secrets={})


def test_a_new_seed_is_text_the_renderer_reads() -> None:
    seed = stores.new_seed()
    assert seed != stores.new_seed()
    held = {stores.secret_name(instance="rd"): {stores.SEED_KEY: seed}}
    assert stores.access(held, instance="rd").seed == base64.b64decode(seed).decode()
