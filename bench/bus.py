"""Event bus throughput and end-to-end latency: the kit's bus beside raw nats-py, one run.

Both sides publish N events with up to 256 acks outstanding and consume them with a durable
pull consumer that acks each message. Latency is publish-start to handler, per event.

    .venv/bin/python bench/bus.py [--events 20000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

import nats
import nats.errors
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from rhime import events
from rhime.kit import bus, metrics
from rhime.runtime import servers

WINDOW = 256


class Ping(events.Event):
    SUBJECT: ClassVar[str] = "user.bench"
    sent: float


def summary(name: str, count: int, elapsed: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    row = {
        "rate": count / elapsed,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[int(len(ordered) * 0.99) - 1] * 1000,
    }
    print(
        f"{name:10} {row['rate']:10.0f} ev/s   p50 {row['p50']:7.2f} ms   p99 {row['p99']:7.2f} ms"
    )
    return row


async def raw(
    url: str, count: int, *, rate: float | None = None, tag: str = "raw"
) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=tag.upper(), subjects=[f"{tag}.>"]))
    psub = await js.pull_subscribe(
        f"{tag}.ping",
        durable=tag,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=10_000),
    )
    latencies: list[float] = []
    done = asyncio.Event()

    async def consume() -> None:
        while len(latencies) < count:
            try:
                msgs = await psub.fetch(WINDOW, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for msg in msgs:
                body = orjson.loads(msg.data)
                latencies.append(time.perf_counter() - body["sent"])
                await msg.ack()
        done.set()

    semaphore = asyncio.Semaphore(WINDOW)

    async def publish(n: int) -> None:
        async with semaphore:
            body = orjson.dumps({"id": f"{tag}-{n}", "sent": time.perf_counter()})
            await js.publish(f"{tag}.ping", body, headers={"Nats-Msg-Id": f"{tag}-{n}"})

    started = time.perf_counter()
    consumer = asyncio.create_task(consume())
    await produce(publish, count, rate)
    await done.wait()
    elapsed = time.perf_counter() - started
    await consumer
    await nc.close()
    return summary("raw nats", count, elapsed, latencies)


async def produce(
    publish: Callable[[int], Awaitable[None]], count: int, rate: float | None
) -> None:
    """All at once (throughput), or paced at `rate` per second (latency without queueing)."""
    if rate is None:
        await asyncio.gather(*(publish(n) for n in range(count)))
        return
    pending = []
    started = time.perf_counter()
    for n in range(count):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(publish(n)))
    await asyncio.gather(*pending)


async def kit(
    url: str, count: int, *, rate: float | None = None, tag: str = "kit"
) -> dict[str, float]:
    b = await bus.Bus.connect(url=url, name="bench", namespace=tag, metrics=metrics.create())
    await b.ensure_streams()
    latencies: list[float] = []
    done = asyncio.Event()

    async def handler(event: Ping) -> None:
        latencies.append(time.perf_counter() - event.sent)
        if len(latencies) == count:
            done.set()

    b.start(bus.Subscription(event=Ping, handler=handler, batch=WINDOW), component="bench")
    started = time.perf_counter()

    async def publish(n: int) -> None:
        async with semaphore:
            await b.publish(Ping(id=f"{tag}-{n}", sent=time.perf_counter()))

    semaphore = asyncio.Semaphore(WINDOW)
    await produce(publish, count, rate)
    await done.wait()
    elapsed = time.perf_counter() - started
    await b.close(grace=1)
    return summary("rhime kit", count, elapsed, latencies)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="5,000 events")
    args = parser.parse_args()
    count = 5_000 if args.quick else args.events
    with servers.running(directory=Path(tempfile.mkdtemp()), names=("nats",)) as runtime:
        url = runtime.urls["nats"]
        print(
            f"throughput: {count} events at once, {WINDOW} publishes in flight, "
            f"pull batches of {WINDOW} (latency here is mostly queueing)"
        )
        r = await raw(url, count)
        k = await kit(url, count)
        paced = max(count // 10, 500)
        print(f"\nlatency: {paced} events paced at 500/s")
        rl = await raw(url, paced, rate=500, tag="rawpaced")
        kl = await kit(url, paced, rate=500, tag="kitpaced")
    print(
        f"\nkit / raw throughput: {k['rate'] / r['rate']:.2f} "
        f"(overhead {100 * (1 - k['rate'] / r['rate']):.0f}%); "
        f"paced p50 kit / raw: {kl['p50'] / rl['p50']:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
