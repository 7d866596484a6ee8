"""Credentials of the managed Redis, NATS and MongoDB: a Secret the operator owns, holding the
seed the passwords derive from, the Redis ACL file, NATS config and MongoDB users script the
servers read, and one URL per component and store, each given only to its component.

The seed is generated once (the reconciler keeps what the Secret already holds); everything
else is rendered from it, purely.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from rhime import catalogue, grants
from rhime_operator import config, names
from rhime_operator import spec as spec_mod

SEED_KEY = "seed"
REDIS_ACL_KEY = "users.acl"
NATS_CONFIG_KEY = "nats.conf"
MONGO_USERS_KEY = "mongo-users.js"
MONGO_ROOT_USER_KEY = "mongo-root-username"
MONGO_ROOT_PASSWORD_KEY = "mongo-root-password"
MOUNT = "/etc/rhime"
_SERVER_KEYS: Mapping[spec_mod.Infra, str] = {
    spec_mod.Infra.REDIS: REDIS_ACL_KEY,
    spec_mod.Infra.NATS: NATS_CONFIG_KEY,
    spec_mod.Infra.MONGO: MONGO_USERS_KEY,
}
WITH_USERS = tuple(_SERVER_KEYS)
# The official mongo image's entrypoint creates this user on an empty volume and then runs
# mongod with --auth; the components' users are made by the `users` container (below).
MONGO_ROOT_ENV = {
    "MONGO_INITDB_ROOT_USERNAME": MONGO_ROOT_USER_KEY,
    "MONGO_INITDB_ROOT_PASSWORD": MONGO_ROOT_PASSWORD_KEY,
}
USERS_READY = "/tmp/rhime-users-ready"


def secret_name(*, instance: str) -> str:
    return names.child_name(instance, "stores")


def new_seed() -> str:
    """A fresh seed (text), base64 as Secret data is."""
    return base64.b64encode(secrets.token_urlsafe(32).encode()).decode()


def url_key(*, component: str, kind: spec_mod.Infra) -> str:
    return f"{component}.{kind.value}-url"


def _seed(secret_data: config.SecretData, *, instance: str) -> str:
    encoded = secret_data.get(secret_name(instance=instance), {}).get(SEED_KEY)
    if not encoded:
        raise KeyError(f"no {SEED_KEY} in the Secret {secret_name(instance=instance)}")
    return base64.b64decode(encoded).decode()


def access(secret_data: config.SecretData, *, instance: str) -> grants.Access:
    return grants.Access(seed=_seed(secret_data, instance=instance), namespace=instance)


def managed(spec: spec_mod.Spec) -> list[spec_mod.Infra]:
    """The managed stores that admit only the components' users."""
    return [
        kind for kind in WITH_USERS if spec.infra(kind).managed and spec.infra(kind).authentication
    ]


# mongosh runs it against the local mongod as the root user (creating that user first on a
# volume from before authentication, which the localhost exception allows while it has no
# user), then creates or updates every component's user: idempotent, run at each start.
_MONGO_USERS_SCRIPT = """\
const admin = db.getSiblingDB("admin");
const root = process.env.MONGO_INITDB_ROOT_USERNAME;
const rootPassword = process.env.MONGO_INITDB_ROOT_PASSWORD;
try {
  admin.auth(root, rootPassword);
} catch (e) {
  admin.createUser({user: root, pwd: rootPassword, roles: ["root"]});
  admin.auth(root, rootPassword);
}
const users = %s;
for (const u of users) {
  if (admin.getUser(u.user)) {
    admin.updateUser(u.user, {pwd: u.pwd, roles: u.roles});
  } else {
    admin.createUser(u);
  }
}
print(`rhime: ${users.length} component users ready`);
"""


def server_config(grant: grants.Access, *, kind: spec_mod.Infra) -> str:
    """What the server reads: Redis' ACL file, NATS' config (JSON is NATS config) or the
    script that makes MongoDB's users."""
    if kind is spec_mod.Infra.REDIS:
        return grant.redis_acl()
    if kind is spec_mod.Infra.MONGO:
        return _MONGO_USERS_SCRIPT % json.dumps(grant.mongo_users(), indent=1, sort_keys=True)
    return json.dumps(grant.nats_authorization(), indent=1, sort_keys=True)


def user_url(base: str, *, kind: spec_mod.Infra) -> str:
    """The managed store's URL as its users log in: MongoDB's users are in `admin`."""
    return f"{base}/?authSource=admin" if kind is spec_mod.Infra.MONGO else base


def server_digest(grant: grants.Access, *, kind: spec_mod.Infra) -> str:
    """Changes when the server's users do, so its pod restarts to read them."""
    return hashlib.sha256(server_config(grant, kind=kind).encode()).hexdigest()


def data(
    spec: spec_mod.Spec,
    *,
    secret_data: config.SecretData,
    instance: str,
    namespace: str,
    components: tuple[catalogue.Component, ...] = catalogue.COMPONENTS,
) -> dict[str, str]:
    """The Secret's data (base64): the seed, the servers' files, every component's URLs."""
    grant = access(secret_data, instance=instance)
    plain: dict[str, str] = {}
    for kind in managed(spec):
        plain[_SERVER_KEYS[kind]] = server_config(grant, kind=kind)
        if kind is spec_mod.Infra.MONGO:
            plain[MONGO_ROOT_USER_KEY] = grants.MONGO_ROOT
            plain[MONGO_ROOT_PASSWORD_KEY] = grant.password(grants.MONGO_ROOT)
        base = user_url(
            config.managed_infra_url(kind=kind, instance=instance, namespace=namespace), kind=kind
        )
        for c in components:
            if kind in config.infra_used(c):
                plain[url_key(component=c.name, kind=kind)] = grant.url(base, user=c.name)
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in plain.items()}
    return {SEED_KEY: base64.b64encode(grant.seed.encode()).decode(), **encoded}


def render_secret(*, data: Mapping[str, str], instance: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": names.metadata(
            name=secret_name(instance=instance),
            namespace=namespace,
            instance=instance,
            component="stores",
        ),
        "data": dict(data),
    }


def env(
    spec: spec_mod.Spec, *, component: catalogue.Component, instance: str
) -> list[dict[str, Any]]:
    """The component's own URLs of the managed stores, key by key from the Secret."""
    return [
        {
            "name": spec_mod.INFRA_ENV[kind],
            "valueFrom": {
                "secretKeyRef": {
                    "name": secret_name(instance=instance),
                    "key": url_key(component=component.name, kind=kind),
                }
            },
        }
        for kind in managed(spec)
        if kind in config.infra_used(component)
    ]


def used_keys(spec: spec_mod.Spec, *, component: catalogue.Component) -> tuple[str, ...]:
    return tuple(
        url_key(component=component.name, kind=kind)
        for kind in managed(spec)
        if kind in config.infra_used(component)
    )


def server_args(kind: spec_mod.Infra) -> list[str]:
    if kind is spec_mod.Infra.REDIS:
        return ["--aclfile", f"{MOUNT}/{REDIS_ACL_KEY}"]
    if kind is spec_mod.Infra.MONGO:
        return ["--auth"]  # the entrypoint adds it too, but only with the root env set
    return ["--config", f"{MOUNT}/{NATS_CONFIG_KEY}"]


def mongo_root_env(*, instance: str) -> list[dict[str, Any]]:
    return [
        {
            "name": env,
            "valueFrom": {"secretKeyRef": {"name": secret_name(instance=instance), "key": key}},
        }
        for env, key in MONGO_ROOT_ENV.items()
    ]


def users_container(
    *, image: str, pull_policy: str, port: int, instance: str, security: Mapping[str, Any]
) -> dict[str, Any]:
    """Beside mongod: runs the users script until it succeeds, then stays (ready) so the pod
    is Ready only once every component can log in; a new script restarts the pod."""
    script = (
        f"rm -f {USERS_READY}; trap 'exit 0' TERM; "
        f"until mongosh --quiet --norc mongodb://127.0.0.1:{port}/admin "
        f"--file {MOUNT}/{MONGO_USERS_KEY}; do sleep 2; done; "
        f"touch {USERS_READY}; while :; do sleep 3600 & wait $!; done"
    )
    return {
        "name": "users",
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["sh", "-c", script],
        "env": [*mongo_root_env(instance=instance), {"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": dict(security),
        "readinessProbe": {"exec": {"command": ["test", "-f", USERS_READY]}, "periodSeconds": 5},
        "volumeMounts": [
            {"name": "users", "mountPath": MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def server_volume(kind: spec_mod.Infra, *, instance: str) -> dict[str, Any]:
    """Only the server's own file of the Secret (not the components' URLs)."""
    key = _SERVER_KEYS[kind]
    return {
        "name": "users",
        "secret": {
            "secretName": secret_name(instance=instance),
            "items": [{"key": key, "path": key}],
            "defaultMode": 0o440,  # group: the fsGroup the server runs with
        },
    }
