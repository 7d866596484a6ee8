"""Credentials of the managed Redis and NATS: a Secret the operator owns, holding the seed the
passwords derive from, the Redis ACL file and NATS config the servers read, and one URL per
component and store, each given only to its component.

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
MOUNT = "/etc/rhime"
_SERVER_KEYS: Mapping[spec_mod.Infra, str] = {
    spec_mod.Infra.REDIS: REDIS_ACL_KEY,
    spec_mod.Infra.NATS: NATS_CONFIG_KEY,
}
# The managed stores with users; MongoDB's official image would need users created at its
# first start, so it stays reachable only through its NetworkPolicy.
WITH_USERS = tuple(_SERVER_KEYS)


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
    return [kind for kind in WITH_USERS if spec.infra(kind).managed]


def server_config(grant: grants.Access, *, kind: spec_mod.Infra) -> str:
    """What the server reads: Redis' ACL file or NATS' config (JSON is NATS config)."""
    if kind is spec_mod.Infra.REDIS:
        return grant.redis_acl()
    return json.dumps(grant.nats_authorization(), indent=1, sort_keys=True)


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
        base = config.managed_infra_url(kind=kind, instance=instance, namespace=namespace)
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
    return ["--config", f"{MOUNT}/{NATS_CONFIG_KEY}"]


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
