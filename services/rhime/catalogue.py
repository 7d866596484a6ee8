"""The single declaration of every Rhime component.

The operator renders Kubernetes objects from it, the local runner starts processes from it,
the gateway routes by it, and docs and tests read it. Adding a service is one entry here.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rhime.kit.settings import Settings


class Kind(enum.StrEnum):
    HTTP = "http"
    GRPC = "grpc"
    WORKER = "worker"
    CRON = "cron"


class Gate(enum.StrEnum):
    """What the gateway demands before forwarding to a component's prefix."""

    OPEN = "open"  # anyone
    LOGIN = "login"  # a valid access token
    SPOTIFY = "spotify"  # a valid access token and a connected Spotify account


class Secret(enum.StrEnum):
    """The Kubernetes Secrets a RhimeDeployment names; each holds the keys listed in KEYS."""

    AUTH = "auth"
    SPOTIFY = "spotify"
    AWS = "aws"


# The auth Secret's keys, each given only to the components that use it: a component that
# can read a key can use it (mint sessions, forge identities, decrypt Spotify grants).
ACCESS_TOKEN_KEY = "RHIME_ACCESS_TOKEN_SECRET"  # signs and verifies sessions: auth, gateway
INTERNAL_KEY = "RHIME_INTERNAL_SECRET"  # signs calls between components: everyone
ENCRYPTION_KEY = "RHIME_ENCRYPTION_KEY"  # encrypts Spotify tokens: their readers only

SECRET_KEYS: dict[Secret, tuple[str, ...]] = {
    Secret.AUTH: (ACCESS_TOKEN_KEY, INTERNAL_KEY, ENCRYPTION_KEY),
    Secret.SPOTIFY: ("RHIME_SPOTIFY_CLIENT_ID", "RHIME_SPOTIFY_CLIENT_SECRET"),
    Secret.AWS: ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
}


class Backing(enum.StrEnum):
    MONGO = "mongo"
    REDIS = "redis"
    NATS = "nats"
    S3 = "s3"
    SPOTIFY = "spotify"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Probe:
    """Kubernetes-style probe: an HTTP path on the component's port, or gRPC health."""

    liveness: str = "/healthz"
    readiness: str = "/readyz"
    grpc: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Component:
    name: str
    kind: Kind
    port: int
    # "module:function" that `rhime serve` runs; for HTTP/worker kinds it builds an ASGI app
    # from settings, for gRPC it returns an awaitable server runner, for cron a coroutine.
    entrypoint: str
    database: str | None = None
    consumes: tuple[str, ...] = ()
    publishes: tuple[str, ...] = ()
    public: bool = False
    prefixes: tuple[str, ...] = ()  # URL prefixes the gateway routes here
    gate: Gate = Gate.SPOTIFY
    backing: tuple[Backing, ...] = (Backing.MONGO, Backing.REDIS, Backing.NATS)
    secrets: tuple[Secret, ...] = (Secret.AUTH,)
    # Of the auth Secret, the keys this component reads (the others' keys it never sees).
    auth_keys: tuple[str, ...] = (INTERNAL_KEY,)
    # Redis key patterns under the namespace it may write ("feed:*" is "{ns}:feed:*"), the
    # ones it may only read, and whether it touches rq's queue (rq's keys are not namespaced;
    # writing them is running code in the recommendation-worker).
    redis_keys: tuple[str, ...] = ()
    redis_reads: tuple[str, ...] = ()
    rq: bool = False
    # components this one calls over HTTP/gRPC (drives NetworkPolicies and local start order)
    calls: tuple[str, ...] = ()
    # components whose consumers' progress this one reads (on the events both consume)
    watches: tuple[str, ...] = ()
    schedule: str | None = None  # cron schedule, for kind CRON
    probe: Probe = Probe()
    description: str = ""

    @property
    def serves_traffic(self) -> bool:
        return self.kind in (Kind.HTTP, Kind.GRPC)

    def load(self) -> tuple[Callable[..., Any], type[Settings]]:
        """The entrypoint function, imported, and the settings type it takes."""
        from rhime.kit.settings import Settings  # the operator reads the catalogue alone

        module_name, _, attr = self.entrypoint.partition(":")
        function = getattr(importlib.import_module(module_name), attr)
        found: type[Settings] = typing.get_type_hints(function).get("settings", Settings)
        return function, found

    def secret_keys(self) -> dict[Secret, tuple[str, ...]]:
        """The keys this component reads, per Secret it uses."""
        return {s: self.auth_keys if s is Secret.AUTH else SECRET_KEYS[s] for s in self.secrets}


_NO_DB = (Backing.REDIS, Backing.NATS)

COMPONENTS: tuple[Component, ...] = (
    Component(
        name="gateway",
        kind=Kind.HTTP,
        port=8080,
        entrypoint="rhime.gateway.app:create",
        public=True,
        gate=Gate.OPEN,
        backing=(Backing.REDIS,),
        auth_keys=(ACCESS_TOKEN_KEY, INTERNAL_KEY),
        calls=(
            "auth",
            "user",
            "post",
            "comment",
            "like",
            "like-count",
            "user-graph",
            "feed",
            "spotify",
            "recommendation",
            "notification",
            "web",
        ),
        redis_keys=("rate:*", "connected:*"),
        redis_reads=("signed-out:*", "spotify-changed:*"),
        description="The only public entry: verifies tokens, gates, rate-limits, routes.",
    ),
    Component(
        name="auth",
        kind=Kind.HTTP,
        port=8101,
        entrypoint="rhime.auth.app:create",
        database="auth",
        consumes=("user.authorized", "user.disconnected"),
        publishes=("user.created", "user.deleted"),
        prefixes=("/api/auth",),
        gate=Gate.OPEN,
        auth_keys=(ACCESS_TOKEN_KEY, INTERNAL_KEY),
        redis_keys=(
            "signin-attempts:*",
            "signin-attempts-client:*",
            "signed-out:*",
            "spotify-changed:*",
        ),
        description="Sign up, sign in, sign out, current user.",
    ),
    Component(
        name="user",
        kind=Kind.HTTP,
        port=8102,
        entrypoint="rhime.user.app:create",
        database="user",
        consumes=("user.created", "user.deleted", "user.blocked", "user.unblocked"),
        prefixes=("/api/users",),
        # the data export gathers each component's part
        calls=("auth", "post", "comment", "like", "user-graph", "spotify", "notification"),
        backing=(Backing.MONGO, Backing.REDIS, Backing.NATS, Backing.S3),
        secrets=(Secret.AUTH, Secret.AWS),
        redis_keys=("user-search:*",),
        description="Profiles, author cards, profile images and finding people.",
    ),
    Component(
        name="post",
        kind=Kind.HTTP,
        port=8103,
        entrypoint="rhime.post.app:create",
        database="post",
        consumes=("user.deleted",),
        publishes=("post.created", "post.deleted"),
        prefixes=("/api/posts",),
        calls=("spotify",),
        description="Posts that share a Spotify track with a caption.",
    ),
    Component(
        name="comment",
        kind=Kind.HTTP,
        port=8104,
        entrypoint="rhime.comment.app:create",
        database="comment",
        consumes=("post.created", "post.deleted", "user.deleted", "user.blocked", "user.unblocked"),
        publishes=("comment.created", "comment.deleted"),
        prefixes=("/api/comments",),
        calls=("post",),  # a post too fresh for its event to have arrived
        description="Comments on posts.",
    ),
    Component(
        name="like",
        kind=Kind.HTTP,
        port=8105,
        entrypoint="rhime.likes.like:create",
        database="likes",
        consumes=(
            "post.created",
            "post.deleted",
            "comment.created",
            "comment.deleted",
            "user.deleted",
            "user.blocked",
            "user.unblocked",
        ),
        publishes=("like.toggled",),
        prefixes=("/api/likes",),
        redis_keys=("likes:mine:*", "likes:seq:*"),
        calls=("post",),  # a post too fresh for its event to have arrived
        description="Like and unlike posts and comments; is it liked by me.",
    ),
    Component(
        name="like-updater",
        kind=Kind.WORKER,
        port=8106,
        entrypoint="rhime.likes.updater:create",
        database="likes",
        consumes=("like.toggled",),
        description="Persists like state from like events.",
    ),
    Component(
        name="like-batch-updater",
        kind=Kind.WORKER,
        port=8107,
        entrypoint="rhime.likes.batch:create",
        database="likes",
        consumes=("like.toggled",),
        redis_keys=(
            "likes:{*",
            "likes:dirty",
            "likes:counted",
            "likes:resyncing",
            "likes:flushes",
            "likes:recorded",
        ),
        # after a Redis loss it rebuilds from the like-updater's state once that has caught up
        watches=("like-updater",),
        description="Coalesces like count changes and writes them in bulk.",
    ),
    Component(
        name="like-count",
        kind=Kind.HTTP,
        port=8108,
        entrypoint="rhime.likes.count:create",
        database="likes",
        backing=(Backing.MONGO, Backing.REDIS),
        prefixes=("/api/like-counts",),
        description="Like counts for one or many items.",
    ),
    Component(
        name="user-graph",
        kind=Kind.HTTP,
        port=8109,
        entrypoint="rhime.graph.app:create",
        database="graph",
        consumes=("user.created", "user.deleted", "user.blocked"),
        publishes=("user.followed", "user.unfollowed", "user.blocked", "user.unblocked"),
        calls=("auth",),
        prefixes=("/api/graph",),
        description="Follow and unfollow, block and unblock, follower and following lists.",
    ),
    Component(
        name="user-graph-view",
        kind=Kind.GRPC,
        port=8110,
        entrypoint="rhime.graphview.server:create",
        database="graph",
        backing=(Backing.MONGO,),
        probe=Probe(grpc=True),
        description="Internal gRPC stream of a user's followers or followees in batches.",
    ),
    Component(
        name="feed",
        kind=Kind.HTTP,
        port=8111,
        entrypoint="rhime.feed.app:create",
        database="feed",
        consumes=(
            "post.created",
            "post.deleted",
            "user.followed",
            "user.unfollowed",
            "user.deleted",
            "user.blocked",
            "user.unblocked",
        ),
        prefixes=("/api/feed",),
        calls=("user-graph-view", "post", "user", "like", "like-count", "comment"),
        redis_keys=("feed:*",),
        description="Home and profile timelines, fan-out on write with a hybrid for big accounts.",
    ),
    Component(
        name="spotify",
        kind=Kind.HTTP,
        port=8112,
        entrypoint="rhime.spotify.app:create",
        database="music",
        consumes=("user.deleted",),
        publishes=("user.authorized", "user.disconnected"),
        prefixes=("/api/spotify",),
        gate=Gate.LOGIN,
        backing=(Backing.MONGO, Backing.REDIS, Backing.NATS, Backing.SPOTIFY),
        secrets=(Secret.AUTH, Secret.SPOTIFY),
        auth_keys=(INTERNAL_KEY, ENCRYPTION_KEY),
        redis_keys=("oauth:*", "spotify-refresh:*", "spotify-artist:*"),
        description="Spotify OAuth, tokens, top artists, tracks and genres.",
    ),
    Component(
        name="recommendation",
        kind=Kind.HTTP,
        port=8113,
        entrypoint="rhime.recommendation.app:create",
        database="music",
        # `user.authorized` enqueues the new connection's first taste fetch
        consumes=("user.authorized", "user.blocked", "user.unblocked", "user.deleted"),
        publishes=("user.recommended",),  # staged by recommendation-worker's weekly refresh
        prefixes=("/api/recommendations",),
        calls=("user-graph-view",),
        backing=(Backing.MONGO, Backing.REDIS, Backing.NATS),
        rq=True,
        description="My friend recommendations with an explanation; dismiss one.",
    ),
    Component(
        name="recommendation-worker",
        kind=Kind.WORKER,
        port=8115,
        entrypoint="rhime.recommendation.worker:create",
        database="music",
        calls=("user-graph-view",),
        backing=(Backing.MONGO, Backing.REDIS, Backing.SPOTIFY),
        secrets=(Secret.AUTH, Secret.SPOTIFY),
        auth_keys=(INTERNAL_KEY, ENCRYPTION_KEY),
        redis_keys=("spotify-refresh:*",),
        rq=True,
        description="rq worker with scheduler: fetches tastes and computes recommendations.",
    ),
    Component(
        name="notification",
        kind=Kind.HTTP,
        port=8116,
        entrypoint="rhime.notification.app:create",
        database="notification",
        consumes=(
            "post.created",
            "post.deleted",
            "comment.created",
            "comment.deleted",
            "like.toggled",
            "user.followed",
            "user.unfollowed",
            "user.deleted",
            "user.recommended",
            "user.blocked",
            "user.unblocked",
        ),
        prefixes=("/api/notifications",),
        gate=Gate.LOGIN,
        backing=(Backing.MONGO, Backing.NATS),
        description="Likes, comments, follows and new recommendations, grouped; unread count.",
    ),
    Component(
        name="web",
        kind=Kind.HTTP,
        port=8114,
        entrypoint="rhime.web.app:create",
        prefixes=("/",),
        gate=Gate.OPEN,
        backing=(),
        calls=("gateway",),
        description="Server-rendered pages; uses only the public API.",
    ),
    Component(
        name="like-reconcile",
        kind=Kind.CRON,
        port=0,
        entrypoint="rhime.likes.reconcile:run",
        database="likes",
        backing=(Backing.MONGO,),
        schedule="17 3 * * *",
        description="Daily: recounts likes from persisted state and repairs drift.",
    ),
    Component(
        name="music-refresh",
        kind=Kind.CRON,
        port=0,
        entrypoint="rhime.recommendation.refresh:run",
        database="music",
        backing=(Backing.MONGO, Backing.REDIS),
        schedule="30 2 * * 1",
        rq=True,
        description="Weekly: enqueues the taste refresh and recomputation in batches.",
    ),
)

BY_NAME: dict[str, Component] = {c.name: c for c in COMPONENTS}


def get(name: str) -> Component:
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(BY_NAME))
        raise KeyError(f"unknown component {name!r}; known: {known}") from None


def routes() -> list[tuple[str, Component]]:
    """(prefix, component) pairs, longest prefix first, for the gateway's router."""
    pairs = [(p, c) for c in COMPONENTS for p in c.prefixes]
    return sorted(pairs, key=lambda pc: len(pc[0]), reverse=True)


def service_url(name: str, template: str) -> str:
    """Base URL of a component: `template` is e.g. http://{name}:{port} (cluster DNS)."""
    component = get(name)
    return template.format(name=component.name, port=component.port).rstrip("/")
