"""Shared state of one running operator: settings, API client, wake-up signals."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Hashable
from typing import Any

from rhime_operator import apply
from rhime_operator import settings as settings_mod

Key = tuple[str, str]  # (namespace, name) of a RhimeDeployment


@dataclasses.dataclass(kw_only=True)
class Runtime:
    settings: settings_mod.OperatorSettings
    client: apply.KubeClient
    wakeups: dict[Key, asyncio.Event] = dataclasses.field(default_factory=dict)
    locks: dict[Key, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # Last observed fingerprint of watched objects, to wake owners only on real changes.
    seen: dict[Hashable, Hashable] = dataclasses.field(default_factory=dict)
    # The status last written per RhimeDeployment (the watched body may lag behind it).
    statuses: dict[Key, dict[str, Any]] = dataclasses.field(default_factory=dict)

    # The last apply failure per RhimeDeployment, until an apply succeeds.
    failures: dict[Key, str] = dataclasses.field(default_factory=dict)
    # A digest of the Secrets each RhimeDeployment was last applied with.
    secret_fingerprints: dict[Key, str] = dataclasses.field(default_factory=dict)
    # Whether the Prometheus Operator's CRDs were there at the last apply.
    monitoring: dict[Key, bool] = dataclasses.field(default_factory=dict)

    def wakeup(self, key: Key) -> asyncio.Event:
        return self.wakeups.setdefault(key, asyncio.Event())

    # RhimeDeployments whose children must be re-applied at the next wake-up (not only
    # their status refreshed).
    reapply: set[Key] = dataclasses.field(default_factory=set)

    def wake(self, key: Key, *, reapply: bool) -> None:
        """Wake the resync loop of `key`: to re-apply everything, or only to refresh status."""
        if reapply:
            self.reapply.add(key)
        event = self.wakeups.get(key)
        if event is not None:
            event.set()

    def changed(self, key: Hashable, fingerprint: Hashable) -> bool:
        """Record `fingerprint` for `key`; True if it differs from the last one recorded."""
        old = self.seen.get(key)
        self.seen[key] = fingerprint
        return old != fingerprint

    def forget(self, key: Key) -> None:
        self.wakeups.pop(key, None)
        self.locks.pop(key, None)
        self.statuses.pop(key, None)
        self.reapply.discard(key)
        self.failures.pop(key, None)
        self.secret_fingerprints.pop(key, None)
        self.monitoring.pop(key, None)
