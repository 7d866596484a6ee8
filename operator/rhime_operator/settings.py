"""Operator settings: passed in (tests) or read from the environment once, at start-up."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Self


@dataclasses.dataclass(frozen=True, kw_only=True)
class OperatorSettings:
    field_manager: str = "rhime-operator"
    # How often every RhimeDeployment is re-applied to correct drift, at the latest.
    resync_seconds: float = 60.0
    # Concurrent API requests while applying one RhimeDeployment.
    apply_concurrency: int = 8
    # How often the Secrets a RhimeDeployment names are read to notice a change (the
    # operator reads only those, and watches no Secrets).
    secret_poll_seconds: float = 5.0
    # Set when the operator watches given namespaces under Roles: it then cannot list
    # namespaces or watch CRDs, and Kopf is told not to try.
    watch_namespaces: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        return cls(
            field_manager=environ.get("RHIME_OPERATOR_FIELD_MANAGER", cls.field_manager),
            resync_seconds=float(environ.get("RHIME_OPERATOR_RESYNC_SECONDS", cls.resync_seconds)),
            apply_concurrency=int(
                environ.get("RHIME_OPERATOR_APPLY_CONCURRENCY", cls.apply_concurrency)
            ),
            secret_poll_seconds=float(
                environ.get("RHIME_OPERATOR_SECRET_POLL_SECONDS", cls.secret_poll_seconds)
            ),
            watch_namespaces=tuple(
                n for n in environ.get("RHIME_OPERATOR_WATCH_NAMESPACES", "").split(",") if n
            ),
        )
