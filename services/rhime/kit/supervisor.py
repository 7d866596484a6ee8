"""Long-running tasks of a component (event consumers, the outbox relay, workers' loops) that
never die silently: a task that raises, or returns while the component is still running, is
logged and restarted with backoff, and reported down (so `/readyz` says which) until it is
running again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("rhime.supervisor")

Run = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    def __init__(self, *, first_delay: float = 0.5, max_delay: float = 30.0) -> None:
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.tasks: list[asyncio.Task[None]] = []
        self._down: dict[str, str] = {}
        self._delay: dict[str, float] = {}
        self._stopping = False

    def start(self, name: str, run: Run, *, reports_up: bool = False) -> asyncio.Task[None]:
        """Run `run()` until the supervisor stops. With `reports_up`, the task calls `up(name)`
        once it really works (a consumer after a fetch); otherwise a restart counts as up."""
        task = asyncio.create_task(self._keep(name, run, reports_up), name=name)
        self.tasks.append(task)
        return task

    def up(self, name: str) -> None:
        """The task works: clear its down report and start its backoff over."""
        self._down.pop(name, None)
        self._delay.pop(name, None)

    def problems(self) -> list[str]:
        return [f"{name} is down: {reason}" for name, reason in sorted(self._down.items())]

    async def _keep(self, name: str, run: Run, reports_up: bool) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            started = loop.time()
            error: Exception | None = None
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
                reason = f"{type(exc).__name__}: {exc}"[:300]
            else:
                if self._stopping:
                    return
                reason = "ended unexpectedly"
            if not reports_up and loop.time() - started > self.max_delay:
                self._delay.pop(name, None)  # it ran well for a while: back off from the start
            delay = self._delay.get(name, self.first_delay)
            self._delay[name] = min(delay * 2, self.max_delay)
            self._down[name] = reason
            log.error("%s stopped (%s); restarting in %.1fs", name, reason, delay, exc_info=error)
            await asyncio.sleep(delay)
            if not reports_up:
                self._down.pop(name, None)

    def halt(self) -> None:
        """From now on a task that returns is done, not restarted (shutdown has begun)."""
        self._stopping = True

    async def stop(self) -> None:
        self.halt()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
