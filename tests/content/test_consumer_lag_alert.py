"""The consumer-lag alert under load: like-updater stops while likes keep coming, and the
metric the rendered `RhimeConsumerLag` rule reads crosses that rule's threshold; once the
worker is back it falls below it again. Real NATS, FerretDB and Redis; the like service is
the publisher, as in production."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

import bson
import httpx
import promql_parser

from rhime import events
from rhime.likes import like, updater
from rhime_operator import monitoring
from rhime_operator import spec as spec_mod
from tests.support import eventually, sample

DURABLE = "like-updater-like-toggled"
USERS = [str(bson.ObjectId()) for _ in range(10)]
POSTS = [str(bson.ObjectId()) for _ in range(10)]


def lag_rule() -> tuple[set[str], float]:
    """The metrics the rendered lag alert reads, and the threshold it compares them with."""
    parsed = spec_mod.parse({"monitoring": {"enabled": True}}, name="rd")
    rendered = monitoring.render_prometheusrule(parsed, instance="rd", namespace="shop")
    (group,) = rendered["spec"]["groups"]
    (rule,) = [r for r in group["rules"] if r["alert"] == "RhimeConsumerLag"]
    expr = promql_parser.parse(rule["expr"])
    assert isinstance(expr, promql_parser.BinaryExpr)
    assert isinstance(expr.rhs, promql_parser.NumberLiteral)
    read: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name is not None
            read.add(node.name)
        for attr in ("expr", "lhs", "rhs"):
            child = getattr(node, attr, None)
            if isinstance(child, promql_parser.Expr):
                visit(child)

    visit(expr.lhs)
    return read, float(expr.rhs.val)


async def test_a_stopped_worker_crosses_the_lag_alert_threshold_and_recovers(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    metrics, threshold = lag_rule()
    assert "rhime_downstream_pending" in metrics  # the reading that outlives the consumer
    watch = {"stream_watch_seconds": 0.2}
    publisher = await serve(like.create(make_settings(like.Settings, component="like", **watch)))
    bus = publisher.app.state.kit.require_bus()

    def worker() -> Any:
        return updater.create(
            make_settings(updater.Settings, component="like-updater", linger_seconds=0.1, **watch)
        )

    running = [await serve(worker())]

    async def lag(client: httpx.AsyncClient) -> float:
        """The rule's left side for this durable: the largest of the series it reads, on
        every component that is up."""
        values = []
        for served in [publisher, *running]:
            text = (await client.get(f"{served.url}/metrics")).text
            values += [sample(text, name, durable=DURABLE) for name in sorted(metrics)]
        return max((v for v in values if v is not None), default=0.0)

    seq = itertools.count()

    async def keep_liking() -> None:
        """About 400 likes a second, on a few posts, until cancelled."""
        while True:
            batch = []
            for _ in range(40):
                n = next(seq)
                batch.append(
                    events.LikeToggled(
                        id=f"like.toggled:lag-{n}",
                        item_id=POSTS[n % len(POSTS)],
                        item_type="post",
                        user_id=USERS[n // len(POSTS) % len(USERS)],
                        liked=n % 2 == 0,
                        seq=n,
                    )
                )
            await bus.publish_many(batch)
            await asyncio.sleep(0.1)

    async with httpx.AsyncClient(timeout=10) as client:

        async def caught_up() -> None:
            assert (
                sample(
                    (await client.get(f"{publisher.url}/metrics")).text,
                    "rhime_downstream_pending",
                    durable=DURABLE,
                )
                == 0
            )

        await eventually(caught_up)  # the publisher reads the worker's durable
        load = asyncio.create_task(keep_liking())
        try:
            await asyncio.sleep(1)
            assert await lag(client) < threshold  # the worker keeps up
            await running.pop().stop()
            seen: list[float] = []

            async def crossed() -> None:
                seen.append(await lag(client))
                assert seen[-1] > threshold

            await eventually(crossed, timeout=60)
            running.append(await serve(worker()))

            async def recovered() -> None:
                seen.append(await lag(client))
                assert seen[-1] < threshold

            await eventually(recovered, timeout=60)
            assert not load.done()  # the likes kept coming all along
        finally:
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load
