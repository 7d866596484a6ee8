"""One request through the gateway, and who sent it: the values the proxy's stages pass on."""

from __future__ import annotations

import dataclasses

from multidict import CIMultiDict
from starlette.types import ASGIApp, Receive, Scope, Send

from rhime.gateway import routing
from rhime.kit import access_tokens, errors, logs


@dataclasses.dataclass(frozen=True, kw_only=True)
class Exchange:
    """A routed request: the ASGI triple, its headers, its request id and its route."""

    scope: Scope
    receive: Receive
    send: Send
    headers: CIMultiDict[str]
    rid: str
    route: routing.Route

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    async def refuse(
        self, status: int, *, message: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Answer with the error envelope instead of forwarding."""
        await refusal(status, rid=self.rid, message=message, headers=headers)(
            self.scope, self.receive, self.send
        )


def refusal(
    status: int, *, rid: str, message: str | None = None, headers: dict[str, str] | None = None
) -> ASGIApp:
    """The error envelope of `status`, with its usual message unless one is given."""
    said = errors.message(status) if message is None else message
    return errors.envelope(status, [{"msg": said}], {**(headers or {}), logs.HEADER: rid})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Caller:
    """Who sent the request, as far as the stages so far have established."""

    claims: access_tokens.Claims | None
    # the token came from the cookie: a changed Spotify claim is sent back as a new cookie
    from_cookie: bool
    client_ip: str
    # the user's last Spotify connect or disconnect (ms), as the rate limit's read saw it
    spotify_changed_ms: int = 0
    refreshed: str | None = None  # a Set-Cookie value to send with the response
