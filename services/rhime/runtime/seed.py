"""`rhime seed`: demo data through the public API, as real people would create it.

Each demo person signs up, connects the (fake) Spotify so they get a taste and
recommendations, follows a few others, shares tracks, comments and likes. Running it again
reuses the people it made before.
"""

from __future__ import annotations

import asyncio
import functools
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from rhime.apiclient import ApiError, Session

PASSWORD = "Demo!pass1"
CAPTIONS = (
    "on repeat all week",
    "for the night bus home",
    "this bassline though",
    "",
    "my Sunday morning song",
    "play it loud",
)
COMMENTS = ("love this", "added to my list", "what a track", "so good live", "instant classic")
QUERIES = "aeiou"

T = TypeVar("T")


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.draw()

    def step(self) -> None:
        self.done += 1
        self.draw()

    def draw(self) -> None:
        width = 30
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        end = "\n" if self.done >= self.total else ""
        print(
            f"\r{self.label:14} [{bar}] {self.done}/{self.total}",
            end=end,
            file=sys.stderr,
            flush=True,
        )


async def _each(
    items: Sequence[T], work: Callable[[T], Awaitable[None]], *, label: str, concurrency: int = 8
) -> None:
    progress = Progress(label, len(items))
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> None:
        async with gate:
            await work(item)
        progress.step()

    await asyncio.gather(*(one(item) for item in items))


async def _settled(call: Callable[[], Awaitable[object]], *, attempts: int = 50) -> None:
    """Retry while a new person is not known yet to the service (404): their user.created
    event may still be on its way. Only for calls that set a state (safe to repeat)."""
    for attempt in range(attempts):
        try:
            await call()
            return
        except ApiError as exc:
            if exc.status != 404 or attempt == attempts - 1:
                raise
        await asyncio.sleep(0.2)


async def _person(url: str, index: int) -> Session:
    session = Session(url)
    name = f"demo{index:03d}"
    try:
        await session.sign_up(user_name=name, email=f"{name}@example.com", password=PASSWORD)
        fresh = True
    except ApiError as exc:
        if exc.status != 400:
            raise
        fresh = False  # made by an earlier seed
    await session.sign_in(login=name, password=PASSWORD)
    if fresh:
        await session.connect_spotify()
    return session


async def seed(*, url: str, users: int, rng: random.Random) -> dict[str, int]:
    people: list[Session] = []

    async def join(index: int) -> None:
        people.append(await _person(url, index))

    await _each(range(users), join, label="people")
    people.sort(key=lambda s: s.user_name)
    counts = {"people": len(people), "follows": 0, "posts": 0, "comments": 0, "likes": 0}

    async def follow(person: Session) -> None:
        for other in rng.sample(people, k=min(5, len(people))):
            if other.user_id != person.user_id:
                await _settled(functools.partial(person.follow, other.user_id))
                counts["follows"] += 1

    await _each(people, follow, label="follows")
    posts: list[str] = []

    async def share(person: Session) -> None:
        for _ in range(rng.randint(1, 3)):
            tracks = await person.search_tracks(rng.choice(QUERIES), limit=10)
            if tracks:
                posts.append(
                    await person.post(track=rng.choice(tracks), caption=rng.choice(CAPTIONS))
                )
                counts["posts"] += 1

    await _each(people, share, label="posts")

    async def react(person: Session) -> None:
        for post_id in rng.sample(posts, k=min(6, len(posts))):
            # like and comment learn of new posts from post.created: retry until they have
            await _settled(functools.partial(person.like, post_id))
            counts["likes"] += 1
            if rng.random() < 0.3:
                await _settled(functools.partial(person.comment, post_id, rng.choice(COMMENTS)))
                counts["comments"] += 1

    await _each(people, react, label="likes")
    for person in people:
        await person.close()
    return counts


def run(*, url: str, users: int, seed_value: int = 7) -> int:
    started = time.monotonic()
    try:
        counts = asyncio.run(seed(url=url, users=users, rng=random.Random(seed_value)))
    except ApiError as exc:
        print(f"seed failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"seed failed: is Rhime running at {url}? ({exc})", file=sys.stderr)
        return 1
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    print(
        f"seeded {summary} in {time.monotonic() - started:.0f}s. Sign in as demo000 .. "
        f"demo{users - 1:03d} with password {PASSWORD}"
    )
    return 0
