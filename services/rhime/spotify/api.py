"""Calls to Spotify's accounts service and Web API, with retries.

httpx rather than spotipy: spotipy is synchronous (it would block the service's event loop),
has no base-URL setting, and its urllib3 retries sleep on any Retry-After however long. Here a
429 waits Retry-After up to a cap and then gives up with `RateLimited` (the caller's job is
retried later), and 5xx or transport errors back off exponentially.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from rhime.spotify.settings import Settings

log = logging.getLogger("rhime.spotify.api")

SCOPE = "user-top-read"


class SpotifyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Spotify answered {status}: {message}")
        self.status = status
        self.message = message


class Unauthorized(SpotifyError):
    """The access token is invalid or expired."""


class RateLimited(SpotifyError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(429, f"rate limited; retry after {retry_after:.0f}s")
        self.retry_after = retry_after


class GrantError(SpotifyError):
    """The accounts service refused a code or refresh token (`invalid_grant` and friends)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(status, f"{error}: {description}")
        self.error = error


def client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=settings.spotify_timeout_seconds,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))
    if isinstance(error, str):
        return f"{error}: {body.get('error_description', '')}"
    return response.text[:200]


async def _send(
    http: httpx.AsyncClient,
    *,
    settings: Settings,
    method: str,
    url: str,
    params: Mapping[str, str | int] | None = None,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    """One request with retries on 429, 5xx and transport errors; other answers are returned.
    Retries stop where the next wait would pass `spotify_request_seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.spotify_request_seconds
    attempt = 0
    while True:
        attempt += 1
        backoff = settings.spotify_backoff_seconds * 2 ** (attempt - 1)
        last = attempt >= settings.spotify_attempts or loop.time() + backoff > deadline
        try:
            response = await http.request(
                method, url, params=params, data=data, headers=headers, auth=auth
            )
        except httpx.TransportError as exc:
            if last:
                raise SpotifyError(502, f"unreachable: {exc.__class__.__name__}") from exc
            log.warning("Spotify unreachable (%s); retry %d in %.1fs", exc, attempt, backoff)
            await asyncio.sleep(backoff)
            continue
        if response.status_code == 429:
            wait = _retry_after(response)
            too_long = wait > settings.spotify_max_retry_after or loop.time() + wait > deadline
            if attempt >= settings.spotify_attempts or too_long:
                raise RateLimited(wait)
            log.info("Spotify rate limit; waiting %.1fs as asked", wait)
            await asyncio.sleep(wait)
            continue
        if response.status_code >= 500:
            if last:
                raise SpotifyError(response.status_code, _message(response))
            log.warning("Spotify %d; retry %d in %.1fs", response.status_code, attempt, backoff)
            await asyncio.sleep(backoff)
            continue
        return response


async def get(
    http: httpx.AsyncClient,
    *,
    settings: Settings,
    token: str,
    path: str,
    params: Mapping[str, str | int] | None = None,
) -> Any:
    """GET a Web API path (`/v1/...`) or a full URL Spotify gave us (`next` links)."""
    url = path if path.startswith(("http://", "https://")) else settings.spotify_api_url + path
    response = await _send(
        http,
        settings=settings,
        method="GET",
        url=url,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code == 401:
        raise Unauthorized(401, _message(response))
    if response.status_code >= 400:
        raise SpotifyError(response.status_code, _message(response))
    return response.json()


async def grant(
    http: httpx.AsyncClient, *, settings: Settings, form: Mapping[str, str]
) -> dict[str, Any]:
    """POST to the accounts service's token endpoint with the client's credentials."""
    response = await _send(
        http,
        settings=settings,
        method="POST",
        url=settings.spotify_accounts_url.rstrip("/") + "/api/token",
        data=form,
        auth=(settings.spotify_client_id, settings.spotify_client_secret.get_secret_value()),
    )
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        raise GrantError(
            response.status_code,
            str(body.get("error", "invalid_request")),
            str(body.get("error_description", "")),
        )
    body = response.json()
    if not isinstance(body, dict) or "access_token" not in body:
        raise SpotifyError(502, "token response without an access token")
    return body
