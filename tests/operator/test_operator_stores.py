"""The managed Redis, NATS and MongoDB admit only per-component users: the operator renders
their users from the seed in its stores Secret and gives each component only its own URLs."""

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


def test_the_users_are_the_components_with_their_catalogue_rules() -> None:
    data = _stores(_platform())
    acl = data["users.acl"].splitlines()
    # off: nobody signs in as it; its rights are for replaying the append-only log
    assert acl[0] == "user default off ~* &* +@all"
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
        stores_env = (
            ("redis", "RHIME_REDIS_URL"),
            ("nats", "RHIME_NATS_URL"),
            ("mongo", "RHIME_MONGO_URL"),
        )
        for store, env in stores_env:
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

    for kind, name in (("StatefulSet", f"rd-{store}") for store in ("redis", "nats", "mongo")):
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


def _mongo_pod(objs: dict[Any, Any]) -> dict[str, Any]:
    return _pod(objs["StatefulSet", "rd-mongo"])


def test_the_managed_mongo_runs_with_auth_and_a_root_user_from_the_stores_secret() -> None:
    objs = _platform()
    data = _stores(objs)
    pod = _mongo_pod(objs)
    mongod, users = pod["spec"]["containers"]
    assert mongod["args"][-1] == "--auth"
    root_env = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in mongod["env"] if "valueFrom" in e
    }
    assert root_env == {
        "MONGO_INITDB_ROOT_USERNAME": {"name": "rd-stores", "key": "mongo-root-username"},
        "MONGO_INITDB_ROOT_PASSWORD": {"name": "rd-stores", "key": "mongo-root-password"},
    }
    assert data["mongo-root-username"] == grants.MONGO_ROOT
    assert data["mongo-root-password"] == grants.password(seed=SEED, user=grants.MONGO_ROOT)
    # mongod reads no file of the Secret; the users container reads only the script
    assert not any(m["name"] == "users" for m in mongod["volumeMounts"])
    assert {"name": "users", "mountPath": "/etc/rhime", "readOnly": True} in users["volumeMounts"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "users"]
    assert volume["secret"]["items"] == [{"key": "mongo-users.js", "path": "mongo-users.js"}]
    assert users["image"] == mongod["image"]
    assert "mongosh" in users["command"][-1]
    assert "/etc/rhime/mongo-users.js" in users["command"][-1]
    assert users["readinessProbe"]["exec"]["command"] == ["test", "-f", stores.USERS_READY]
    assert users["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["metadata"]["annotations"][names.CHECKSUM_ANNOTATION]


def _script_users(script: str) -> list[dict[str, Any]]:
    line = next(x for x in script.splitlines() if x.startswith("const users = "))
    start = script.index(line) + len("const users = ")
    decoded, _ = json.JSONDecoder().raw_decode(script[start:])
    return list(decoded)


def test_each_mongo_user_may_read_and_write_its_own_database_only() -> None:
    script = _stores(_platform())["mongo-users.js"]
    users = {u["user"]: u for u in _script_users(script)}
    mongo_users = {c.name for c in catalogue.COMPONENTS if catalogue.Backing.MONGO in c.backing}
    assert set(users) == mongo_users
    assert grants.MONGO_ROOT not in users
    for name, user in users.items():
        component = catalogue.get(name)
        assert user["pwd"] == grants.password(seed=SEED, user=name)
        # the database the kit opens for it (Settings.database_name, RHIME_NAMESPACE=rd)
        assert user["roles"] == [{"role": "readWrite", "db": f"rd_{component.database}"}]
    assert users["feed"]["roles"] == [{"role": "readWrite", "db": "rd_feed"}]
    assert users["like-reconcile"]["roles"] == [{"role": "readWrite", "db": "rd_likes"}]
    # idempotent: updates a user that exists, so it can run at every start
    assert "admin.updateUser(u.user" in script
    assert "admin.createUser(u)" in script


def test_mongo_urls_log_in_against_admin() -> None:
    data = _stores(_platform())
    url = urllib.parse.urlsplit(data["feed.mongo-url"])
    assert (url.hostname, url.port, url.username) == (f"rd-mongo.{NS}.svc", 27017, "feed")
    assert urllib.parse.parse_qs(url.query) == {"authSource": ["admin"]}


def test_mongo_authentication_off_keeps_the_plain_url_and_no_users() -> None:
    objs = _platform({"infrastructure": {"mongo": {"managed": {"authentication": False}}}})
    data = _stores(objs)
    assert "mongo-users.js" not in data
    assert not any(k.endswith(".mongo-url") or k.startswith("mongo-root") for k in data)
    (mongod,) = _mongo_pod(objs)["spec"]["containers"]
    assert "--auth" not in mongod["args"]
    assert "env" not in mongod
    configmap = objs["ConfigMap", "rd-feed-env"]["data"]
    assert configmap["RHIME_MONGO_URL"] == f"mongodb://rd-mongo.{NS}.svc:27017"
    assert "RHIME_MONGO_URL" not in _platform()["ConfigMap", "rd-feed-env"]["data"]


@pytest.mark.parametrize("store", ["redis", "nats"])
def test_only_mongo_authentication_can_be_turned_off(store: str) -> None:
    with pytest.raises(spec.SpecError, match="only MongoDB"):
        spec.parse({"infrastructure": {store: {"managed": {"authentication": False}}}}, name="rd")
