"""The event contract: every subject Rhime publishes, its payload and its stream.

Ids are deterministic where the fact is (one `user.created` per user), so a republish is
deduplicated by JetStream (`Nats-Msg-Id`) and recognised by idempotent consumers.
"""

from __future__ import annotations

import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    SUBJECT: ClassVar[str]

    id: str = Field(min_length=1, max_length=200)
    occurred_at: datetime.datetime = Field(default_factory=now)


class UserCreated(Event):
    """Ids and the public name only: the email stays with auth (events are kept for days,
    and dead letters for weeks; older events' email is ignored)."""

    SUBJECT = "user.created"
    user_id: str
    user_name: str


class UserAuthorized(Event):
    """The user connected Spotify. `connection` counts the user's connections (1, 2, ...;
    0 from publishers that predate it)."""

    SUBJECT = "user.authorized"
    user_id: str
    connection: int = Field(default=0, ge=0)


class UserDisconnected(Event):
    """The user disconnected Spotify (or Spotify revoked Rhime's access): connection number
    `connection` is over, and the gate closes until they connect again."""

    SUBJECT = "user.disconnected"
    user_id: str
    connection: int = Field(ge=0)


def spotify_seq(event: UserAuthorized | UserDisconnected) -> int:
    """Orders one user's connects and disconnects, so a late or repeated delivery cannot
    flip the state back: connection n's connect is 2n, its end 2n + 1."""
    return 2 * event.connection + (1 if isinstance(event, UserDisconnected) else 0)


class UserDeleted(Event):
    """The person deleted their account: every component removes what it holds of them
    (ids only; the name is theirs no more)."""

    SUBJECT = "user.deleted"
    user_id: str


class UserFollowed(Event):
    """`version` orders one pair's follows and unfollows (odd: follow, even: unfollow; 0 from
    publishers that predate it, whose id ends in it)."""

    SUBJECT = "user.followed"
    follower_id: str
    followee_id: str
    version: int = Field(default=0, ge=0)


class UserUnfollowed(Event):
    SUBJECT = "user.unfollowed"
    follower_id: str
    followee_id: str
    version: int = Field(default=0, ge=0)


def follow_version(event: UserFollowed | UserUnfollowed) -> int:
    """The edge version of a follow or unfollow, from the field or else the id."""
    if event.version:
        return event.version
    try:
        return int(event.id.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


class UserBlocked(Event):
    """`blocker_id` blocked `blocked_id`: the two cannot reach each other (either way) until
    it is lifted. `version` orders one pair's blocks and unblocks (odd: block, even:
    unblock), so consumers keep the highest and late deliveries change nothing."""

    SUBJECT = "user.blocked"
    blocker_id: str
    blocked_id: str
    version: int = Field(ge=1)


class UserUnblocked(Event):
    SUBJECT = "user.unblocked"
    blocker_id: str
    blocked_id: str
    version: int = Field(ge=1)


class UserRecommended(Event):
    """The weekly refresh recommends `other_id` to `user_id` for the first time (once per
    pair, ever: the id is the pair's). `week` is the refresh's ISO week (`2026-W49`)."""

    SUBJECT = "user.recommended"
    user_id: str
    other_id: str
    week: str = Field(min_length=1, max_length=20)


class PostCreated(Event):
    SUBJECT = "post.created"
    post_id: str
    user_id: str
    created_at: datetime.datetime


class PostDeleted(Event):
    SUBJECT = "post.deleted"
    post_id: str
    user_id: str


class CommentCreated(Event):
    SUBJECT = "comment.created"
    comment_id: str
    post_id: str
    user_id: str


class CommentDeleted(Event):
    SUBJECT = "comment.deleted"
    comment_id: str
    post_id: str
    user_id: str


class LikeToggled(Event):
    """A person liked (`liked=True`) or unliked an item. `seq` orders one person's actions on
    one item, so late or repeated deliveries cannot flip state wrongly."""

    SUBJECT = "like.toggled"
    item_id: str
    item_type: Literal["post", "comment"]
    user_id: str
    liked: bool
    seq: int = Field(ge=0)
    # The person deleted their account: an unlike after which nothing of the pair is kept
    # (state, transition records), instead of an "unliked" record.
    forget: bool = False


EVENTS: tuple[type[Event], ...] = (
    UserCreated,
    UserAuthorized,
    UserDisconnected,
    UserDeleted,
    UserFollowed,
    UserUnfollowed,
    UserBlocked,
    UserUnblocked,
    UserRecommended,
    PostCreated,
    PostDeleted,
    CommentCreated,
    CommentDeleted,
    LikeToggled,
)

BY_SUBJECT: dict[str, type[Event]] = {e.SUBJECT: e for e in EVENTS}

# One stream per noun; the dead-letter stream keeps poison messages for inspection.
STREAMS: dict[str, str] = {"user": "USER", "post": "POST", "comment": "COMMENT", "like": "LIKE"}
DEAD_LETTER = "dlq"


def stream_name(namespace: str, noun: str) -> str:
    base = DEAD_LETTER.upper() if noun == DEAD_LETTER else STREAMS[noun]
    return f"{namespace.upper().replace('-', '_')}_{base}"


def noun(subject: str) -> str:
    return subject.split(".", 1)[0]
