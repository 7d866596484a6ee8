"""Templates: one Jinja environment, filters for dates and names, page and fragment responses.

A request that carries `X-Rhime-Partial` (sent by rhime.js) gets only the fragment it asked
for; every other request gets the whole page, so each screen works without JavaScript.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from rhime.web import charts

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
PARTIAL_HEADER = "x-rhime-partial"
# The user API fills `profileImage` with this stock picture when a person has none of their
# own (docs/api/identity.md). Pages show the person's initial instead: no third-party images.
DEFAULT_PICTURES = frozenset({"https://cdn-icons-png.flaticon.com/512/149/149071.png"})


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html", "svg")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ago"] = ago
    env.filters["artist_names"] = artist_names
    env.filters["initial"] = initial
    env.filters["display_name"] = display_name
    env.filters["picture"] = picture
    env.globals["breakdown_bars"] = charts.breakdown_bars
    env.globals["genre_mix"] = charts.genre_mix
    env.globals["donut_radius"] = charts.DONUT_RADIUS
    env.globals["static"] = static_urls()
    return env


def static_urls() -> dict[str, str]:
    """File name → URL with a content hash, so browsers may cache static files for long."""
    urls = {}
    for path in sorted(STATIC.iterdir()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        urls[path.name] = f"/static/{path.name}?v={digest}"
    return urls


def is_partial(request: Request) -> bool:
    return PARTIAL_HEADER in request.headers


def render(env: jinja2.Environment, template: str, context: Mapping[str, Any]) -> str:
    return env.get_template(template).render(**context)


def respond(
    env: jinja2.Environment,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    response = HTMLResponse(render(env, template, context), status_code=status)
    # Pages depend on who is signed in: never let a shared cache keep them.
    response.headers["cache-control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_page(request: Request, status: int, messages: list[str]) -> HTMLResponse:
    """An error as a page (or, for rhime.js, the errors fragment): people read these."""
    env = request.app.state.templates
    template = "not_found.html" if status == 404 else "error.html"
    context = {
        "viewer": None,
        "request_path": request.url.path,
        "status": status,
        "messages": messages,
    }
    if is_partial(request):
        return respond(env, "_errors.html", context, status=status)
    return respond(env, template, context, status=status)


def ago(value: str | None, now: datetime.datetime | None = None) -> str:
    """ "3m", "5h", "2d" or a date, from an ISO-8601 timestamp."""
    if not value:
        return ""
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    seconds = ((now or datetime.datetime.now(datetime.UTC)) - when).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d"
    return when.strftime("%-d %b %Y")


def artist_names(artists: Sequence[Mapping[str, Any]] | None) -> str:
    names = [str(a.get("name", "")) for a in artists or () if a.get("name")]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " & " + names[-1]


def display_name(person: Mapping[str, Any] | None) -> str:
    """The name to show for a profile or author card, whatever fields it has."""
    if not person:
        return "Someone"
    name = person.get("displayName")
    if not name:
        # The user API stores names lowercased; show them as names are written.
        parts = (str(person.get(k) or "") for k in ("firstName", "lastName"))
        name = " ".join(p[:1].upper() + p[1:] for p in parts if p)
    return str(name or person.get("userName") or "Someone")


def picture(person: Mapping[str, Any] | None) -> str | None:
    """The person's own profile picture URL, or None when they have not uploaded one."""
    url = (person or {}).get("profileImage")
    if not isinstance(url, str) or not url or url in DEFAULT_PICTURES:
        return None
    return url


def initial(name: str | None) -> str:
    return (name or "?").strip()[:1].upper() or "?"
