"""Where a path goes: the catalogue's prefixes, longest first, with their gates."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from rhime import catalogue
from rhime.kit.settings import Settings


@dataclasses.dataclass(frozen=True)
class Route:
    prefix: str
    component: str
    gate: catalogue.Gate
    base_url: str

    @property
    def api(self) -> bool:
        return self.prefix.startswith("/api")


def table(settings: Settings, overrides: Mapping[str, str]) -> list[Route]:
    routes = []
    for prefix, component in catalogue.routes():
        if component.name == "gateway":
            continue
        base = overrides.get(component.name) or settings.service_url(component.name)
        routes.append(Route(prefix, component.name, component.gate, base.rstrip("/")))
    return routes


def match(routes: list[Route], path: str) -> Route | None:
    """The route for `path`; None for an `/api` path no service serves, so that API clients get
    the JSON 404 rather than the web's HTML page."""
    api = path == "/api" or path.startswith("/api/")
    for route in routes:
        if route.prefix == "/":
            if not api:
                return route
        elif path == route.prefix or path.startswith(route.prefix + "/"):
            return route
    return None


def is_internal(path: str) -> bool:
    """Internal routes are never public, at the root or under any prefix."""
    return path.startswith("/internal/") or path == "/internal" or "/internal/" in path


def is_kit(path: str, kit_paths: frozenset[str]) -> bool:
    """A component's own health or metrics path, however it is spelled (`/metrics/`,
    `//metrics`): never forwarded, since components serve them to the cluster only."""
    return "/" + "/".join(part for part in path.split("/") if part) in kit_paths


def is_docs(route: Route, path: str) -> bool:
    """A service's OpenAPI docs are public (they describe, they do not serve data)."""
    return route.api and path in (f"{route.prefix}/docs", f"{route.prefix}/openapi.json")
