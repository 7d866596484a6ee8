"""Calls between components over HTTP, carrying a signed identity and the request id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from rhime.kit import errors, identity, logs, traces

if TYPE_CHECKING:
    from rhime.kit.kit import Kit


async def call(
    kit: Kit,
    service: str,
    method: str,
    path: str,
    *,
    as_user: identity.Identity | None = None,
    json: Any = None,
    params: Mapping[str, str | int] | None = None,
    timeout: float = 5.0,
) -> Any:
    """Call another component; returns its decoded JSON body. Its 4xx errors are re-raised
    as the same ApiError; unreachable → 502, slow → 504."""
    who = as_user or identity.Identity(user_id="", service=kit.settings.component or "rhime")
    headers = {
        identity.HEADER: identity.encode(
            who, secret=kit.settings.internal_secret.get_secret_value()
        ),
        logs.HEADER: logs.request_id.get() or logs.new_request_id(),
    }
    url = kit.settings.service_url(service) + path
    data = orjson.dumps(json) if json is not None else None
    if data is not None:
        headers["content-type"] = "application/json"
    try:
        # named by the callee and method only: the path holds ids
        with traces.outgoing(kit.tracing, f"{method} {service}", headers, {"url.path": path}):
            async with kit.http.request(
                method,
                url,
                data=data,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body = await response.read()
    except TimeoutError:
        raise errors.ApiError(504, errors.message(504)) from None
    except (aiohttp.ClientError, OSError):
        # not CancelledError: a cancelled caller (a deadline, shutdown) must stay cancelled
        raise errors.ApiError(502, errors.message(502)) from None
    if response.status >= 500:  # before decoding: a 5xx body may be plain text
        raise errors.ApiError(502, errors.message(502))
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        raise errors.ApiError(502, errors.message(502)) from None
    if response.status >= 400:
        exc = errors.ApiError(response.status, errors.message(response.status))
        if isinstance(decoded, dict) and isinstance(decoded.get("errors"), list):
            exc.items = decoded["errors"]
        raise exc
    return decoded
