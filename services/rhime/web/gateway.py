"""Calls to the public API through the gateway, as the signed-in person.

The browser's cookie is forwarded unchanged, so the platform sees exactly what the person
may do; the web component holds no identity of its own. It vouches only for the browser's
address (signed, see `kit.client_address`), so the gateway's limits count the browser, not
the web pod.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from rhime.kit import client_address, logs, traces

# The two 401s the gateway gives: no valid token, or a token without Spotify.
NOT_AUTHORIZED = "not authorized"


class ApiFailure(Exception):
    """The API answered with an error (or could not be reached: status 502/504)."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors

    @property
    def messages(self) -> list[str]:
        return [e.get("msg", "") for e in self.errors]

    def field_errors(self) -> dict[str, str]:
        """First message per field, for inline form errors."""
        found: dict[str, str] = {}
        for error in self.errors:
            field = error.get("field")
            if field and field not in found:
                found[field] = error.get("msg", "")
        return found

    @property
    def needs_spotify(self) -> bool:
        return self.status == 401 and any(NOT_AUTHORIZED in m.lower() for m in self.messages)

    @property
    def signed_out(self) -> bool:
        return self.status == 401 and not self.needs_spotify


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    set_cookies: tuple[str, ...] = ()


@dataclasses.dataclass
class Gateway:
    """One browser request's view of the API: its cookie and request id."""

    http: aiohttp.ClientSession
    base_url: str
    cookie: str | None
    request_id: str
    client_token: str | None = None  # the browser's address, signed for the gateway
    timeout: float = 10.0
    tracing: traces.Tracing | None = None
    # Every Set-Cookie the API sent during this request, in order, for the browser.
    set_cookies: list[str] = dataclasses.field(default_factory=list)

    def _headers(self, *, json_body: bool) -> dict[str, str]:
        headers = {logs.HEADER: self.request_id, "accept": "application/json"}
        if self.cookie:
            headers["cookie"] = self.cookie
        if self.client_token:
            headers[client_address.HEADER] = self.client_token
        if json_body:
            headers["content-type"] = "application/json"
        return headers

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Reply:
        """Call the API; 4xx/5xx raise ApiFailure. Redirects are not followed."""
        data = orjson.dumps(json) if json is not None else None
        headers = self._headers(json_body=data is not None)
        try:
            with traces.outgoing(self.tracing, f"{method} gateway", headers, {"url.path": path}):
                async with self.http.request(
                    method,
                    self.base_url + path,
                    data=data,
                    params=params,
                    headers=headers,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as response:
                    body = await response.read()
                    cookies = tuple(response.headers.getall("set-cookie", ()))
                    status = response.status
                    content_type = response.content_type
        except TimeoutError:
            raise ApiFailure(504, [{"msg": "The service took too long to answer."}]) from None
        except (aiohttp.ClientError, OSError):
            raise ApiFailure(502, [{"msg": "The service is unavailable."}]) from None
        self.set_cookies.extend(cookies)
        decoded = _decode(body, content_type)
        if status >= 400:
            raise ApiFailure(status, _errors(decoded, status))
        return Reply(status=status, body=decoded, set_cookies=cookies)

    async def get(self, path: str, *, params: Mapping[str, str | int] | None = None) -> Any:
        return (await self.send("GET", path, params=params)).body

    async def post(self, path: str, json: Any = None) -> Any:
        return (await self.send("POST", path, json=json)).body

    async def put(self, path: str, json: Any = None) -> Any:
        return (await self.send("PUT", path, json=json)).body

    async def patch(self, path: str, json: Any = None) -> Any:
        return (await self.send("PATCH", path, json=json)).body

    async def delete(self, path: str, json: Any = None) -> Any:
        return (await self.send("DELETE", path, json=json)).body

    async def optional(
        self,
        path: str,
        *,
        default: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """GET that treats 404 as absent (a deleted user, an item without data)."""
        try:
            return await self.get(path, params=params)
        except ApiFailure as failure:
            if failure.status == 404:
                return default
            raise


async def gather(*calls: Any) -> list[Any]:
    """Run API calls concurrently; the first failure is raised after all finish, so no call
    is left running when the page gives up."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


def _decode(body: bytes, content_type: str) -> Any:
    if not body:
        return None
    if content_type == "application/json" or body[:1] in (b"{", b"["):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    return None


def _errors(decoded: Any, status: int) -> list[dict[str, str]]:
    if isinstance(decoded, dict) and isinstance(decoded.get("errors"), list):
        items = [e for e in decoded["errors"] if isinstance(e, dict) and "msg" in e]
        if items:
            return [{k: str(v) for k, v in e.items() if v is not None} for e in items]
    return [{"msg": "Something went wrong." if status >= 500 else f"Request failed ({status})."}]
