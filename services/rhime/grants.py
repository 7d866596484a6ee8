"""Who may do what in Redis, NATS and MongoDB: one user per component, its password derived
from the deployment's store seed, its rules drawn from the catalogue.

The local runtime, the tests and the operator render the same rules (a Redis ACL file and a
NATS authorization block) and hand each component URLs that carry only its own credentials.
MongoDB users exist only where the server enforces them (the operator's managed MongoDB): the
local FerretDB 1.x cannot give a user roles (see docs/security.md).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterable
from typing import Any

from rhime import catalogue, events

# The local runtime's and the tests' own user, allowed everything; clusters have none.
ADMIN = "rhime-admin"
# The managed MongoDB's administrator: creates the components' users, used by nothing else.
MONGO_ROOT = "rhime-root"
# rq's keys and channels; not namespaced, so every deployment sharing a Redis shares them.
RQ_PATTERN = "rq:*"


def password(*, seed: str, user: str) -> str:
    """A user's password: the same for a seed every time, unrelated between users."""
    digest = hmac.new(seed.encode(), f"store-user:{user}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def with_credentials(url: str, *, user: str, secret: str) -> str:
    """`url` with `user:secret@` in place of whatever userinfo it had."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def uses(component: catalogue.Component, backing: catalogue.Backing) -> bool:
    return backing in component.backing


# --- Redis ---------------------------------------------------------------------------------


def redis_rules(component: catalogue.Component, *, namespace: str) -> list[str]:
    """ACL rules (without the user's name and password): every ordinary command, but keys
    only under the component's own patterns; `@dangerous` (KEYS, FLUSHALL, CONFIG, ...) never."""
    rules = ["resetkeys", "resetchannels", "+@all", "-@dangerous"]
    rules += [f"~{namespace}:{pattern}" for pattern in component.redis_keys]
    rules += [f"%R~{namespace}:{pattern}" for pattern in component.redis_reads]
    if component.rq:
        rules += [f"~{RQ_PATTERN}", f"&{RQ_PATTERN}"]
    return rules


def redis_acl(
    *,
    seed: str,
    namespace: str,
    components: Iterable[catalogue.Component] = catalogue.COMPONENTS,
    admin: bool = False,
) -> str:
    """An ACL file: the default (unauthenticated) user off, one user per component that uses
    Redis, and the admin when asked for. Passwords are stored as SHA-256 digests."""

    def digest(user: str) -> str:
        return "#" + hashlib.sha256(password(seed=seed, user=user).encode()).hexdigest()

    # Off: no client can be the default user. Redis (7.0) replays its append-only log as
    # that user and checks ACLs again at each EXEC, so it must be allowed everything, or the
    # writes of every script and MULTI are dropped when Redis restarts.
    lines = ["user default off ~* &* +@all"]
    if admin:
        lines.append(f"user {ADMIN} on {digest(ADMIN)} ~* &* +@all")
    for c in components:
        if uses(c, catalogue.Backing.REDIS):
            rules = redis_rules(c, namespace=namespace)
            lines.append(" ".join(["user", c.name, "on", digest(c.name), *rules]))
    return "\n".join(lines) + "\n"


# --- NATS ----------------------------------------------------------------------------------


def inbox_prefix(name: str) -> str:
    """Where a component's replies arrive (JetStream acks, fetched messages): its own, so no
    other component may subscribe to them."""
    return f"_INBOX.{name}"


def durable(component: str, subject: str) -> str:
    """The durable consumer a component's subscription to `subject` uses (as the kit names
    it); its dead letters go to `dlq.<durable>`."""
    return f"{component}-{subject.replace('.', '-')}"


def downstream(component: catalogue.Component, *, namespace: str) -> list[tuple[str, str]]:
    """(stream, durable) of every consumer of the subjects `component` publishes: their lag
    is read by the publisher too, so a consumer that is down still shows how far behind it is
    (its own reading stops with it)."""
    return sorted(
        {
            (events.stream_name(namespace, events.noun(subject)), durable(other.name, subject))
            for other in catalogue.COMPONENTS
            for subject in other.consumes
            if subject in component.publishes
        }
    )


def nats_permissions(component: catalogue.Component, *, namespace: str) -> dict[str, Any]:
    """Publish its own events, declare and watch the streams (every component does: at start,
    and for the near-limit warning), read the lag of the consumers of its events and the
    progress of the consumers it watches, run its own durable consumers and dead-letter
    their messages; subscribe to its own inbox only."""
    streams = [events.stream_name(namespace, n) for n in (*events.STREAMS, events.DEAD_LETTER)]
    publish = [f"{namespace}.{subject}" for subject in component.publishes]
    publish += [
        f"$JS.API.CONSUMER.INFO.{stream}.{name}"
        for stream, name in downstream(component, namespace=namespace)
    ]
    for stream in streams:
        publish += [
            f"$JS.API.STREAM.CREATE.{stream}",
            f"$JS.API.STREAM.UPDATE.{stream}",
            f"$JS.API.STREAM.INFO.{stream}",
        ]
    for subject in component.consumes:
        stream = events.stream_name(namespace, events.noun(subject))
        name = durable(component.name, subject)
        publish += [
            f"$JS.API.CONSUMER.INFO.{stream}.{name}",
            f"$JS.API.CONSUMER.CREATE.{stream}.{name}",
            f"$JS.API.CONSUMER.CREATE.{stream}.{name}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}",
            f"$JS.ACK.{stream}.{name}.>",
            f"{namespace}.{events.DEAD_LETTER}.{name}",
        ]
    for other in map(catalogue.get, component.watches):
        for subject in set(other.consumes) & set(component.consumes):
            stream = events.stream_name(namespace, events.noun(subject))
            publish.append(f"$JS.API.CONSUMER.INFO.{stream}.{durable(other.name, subject)}")
    return {
        "publish": {"allow": publish},
        "subscribe": {"allow": [f"{inbox_prefix(component.name)}.>"]},
    }


def nats_authorization(
    *,
    seed: str,
    namespace: str,
    components: Iterable[catalogue.Component] = catalogue.COMPONENTS,
    admin: bool = False,
) -> dict[str, Any]:
    """The `authorization` block of a NATS config (NATS reads JSON): one user per component
    that uses NATS, and the admin (no restrictions) when asked for."""
    users: list[dict[str, Any]] = []
    if admin:
        users.append({"user": ADMIN, "password": password(seed=seed, user=ADMIN)})
    for c in components:
        if uses(c, catalogue.Backing.NATS):
            users.append(
                {
                    "user": c.name,
                    "password": password(seed=seed, user=c.name),
                    "permissions": nats_permissions(c, namespace=namespace),
                }
            )
    return {"authorization": {"users": users}}


# --- MongoDB -------------------------------------------------------------------------------


def mongo_database(*, namespace: str, database: str) -> str:
    """The MongoDB database a catalogue `database` is in (the kit's `Settings.database_name`)."""
    return f"{namespace}_{database}"


def mongo_roles(component: catalogue.Component, *, namespace: str) -> list[dict[str, str]]:
    """Read and write its own database (indexes included), and nothing else."""
    if not uses(component, catalogue.Backing.MONGO) or component.database is None:
        return []
    return [
        {
            "role": "readWrite",
            "db": mongo_database(namespace=namespace, database=component.database),
        }
    ]


def mongo_users(
    *, seed: str, namespace: str, components: Iterable[catalogue.Component] = catalogue.COMPONENTS
) -> list[dict[str, Any]]:
    """One user per component that uses MongoDB, as `createUser` takes them (in `admin`)."""
    return [
        {
            "user": c.name,
            "pwd": password(seed=seed, user=c.name),
            "roles": mongo_roles(c, namespace=namespace),
        }
        for c in components
        if mongo_roles(c, namespace=namespace)
    ]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Access:
    """One deployment's store users: the seed their passwords come from, and the namespace
    their rules are written for."""

    seed: str
    namespace: str
    admin: bool = False
    components: tuple[catalogue.Component, ...] = catalogue.COMPONENTS

    def password(self, user: str) -> str:
        return password(seed=self.seed, user=user)

    def url(self, base: str, *, user: str) -> str:
        return with_credentials(base, user=user, secret=self.password(user))

    def redis_acl(self) -> str:
        return redis_acl(
            seed=self.seed, namespace=self.namespace, components=self.components, admin=self.admin
        )

    def nats_authorization(self) -> dict[str, Any]:
        return nats_authorization(
            seed=self.seed, namespace=self.namespace, components=self.components, admin=self.admin
        )

    def mongo_users(self) -> list[dict[str, Any]]:
        return mongo_users(seed=self.seed, namespace=self.namespace, components=self.components)
