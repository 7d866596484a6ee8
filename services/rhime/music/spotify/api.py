"""Calls to Spotify's accounts service and Web API through spotipy, with our retries.

spotipy is synchronous: every call runs on a thread of the component's own bounded pool
(`Client`), never on the event loop nor in the loop's default executor that others share.
The retry policy is ours, not spotipy's: a 429 waits Retry-After up to a cap and then gives up
with `RateLimited` (the caller's job is retried later), 5xx or transport errors back off
exponentially, and nothing waits past the call's deadline (`spotify_request_seconds`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import CacheHandler
from spotipy.oauth2 import SpotifyOAuth

from rhime.music.spotify.settings import Settings

# the name operators filter on, whichever component (service or worker) makes the call
log = logging.getLogger("rhime.spotify.api")
T = TypeVar("T")

SCOPE = "user-top-read"
# A Web API call with a Spotify client already holding the caller's token.
Call = Callable[[spotipy.Spotify], Any]


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


class _Answer(Exception):
    """An error answer of either Spotify host, as the retry loop needs it."""

    def __init__(
        self, status: int, headers: Mapping[str, str], message: str, error: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.message = message
        self.error = error


class _Accounts(SpotifyOAuth):  # type: ignore[misc]
    """spotipy's authorization-code client, keeping the status and headers of a refusal that
    spotipy would reduce to its error text (a 429's Retry-After, a 5xx)."""

    def _handle_oauth_error(self, http_error: requests.HTTPError) -> None:
        response = http_error.response
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        raise _Answer(
            response.status_code,
            response.headers,
            str(body.get("error_description", "")),
            error=str(body.get("error", "invalid_request")),
        )


class Client:
    """The Spotify side of one component: a bounded pool of threads, each with its own
    spotipy clients over its own connection pool, made once and reused."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local = threading.local()
        self.pool = ThreadPoolExecutor(
            max_workers=settings.spotify_threads, thread_name_prefix="spotify"
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        # running calls end by their own timeouts; waiting ones are dropped
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # no urllib3 retries at all: a retry it made would sleep on this thread past the
            # call's deadline, and one it gave up on would reach us as a bare "Max Retries"
            adapter = HTTPAdapter(max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def web(self, *, token: str, timeout: float) -> spotipy.Spotify:
        """This thread's Web API client, holding `token`."""
        sp: spotipy.Spotify | None = getattr(self._local, "web", None)
        if sp is None:
            # spotipy's own retries and backoff are off (the session above has none either):
            # retries, waits and the deadline are the retry loop's below
            sp = spotipy.Spotify(
                requests_session=self._session(), retries=0, status_retries=0, backoff_factor=0
            )
            sp.prefix = self._settings.spotify_api_url.rstrip("/") + "/v1/"
            self._local.web = sp
        sp.set_auth(token)
        # per attempt, no longer than what is left of the call's deadline
        sp.requests_timeout = timeout
        return sp

    def accounts(self, *, cache: CacheHandler, timeout: float) -> SpotifyOAuth:
        """This thread's accounts-service client, storing what it gets in `cache`."""
        auth: _Accounts | None = getattr(self._local, "accounts", None)
        if auth is None:
            settings = self._settings
            auth = _Accounts(
                client_id=settings.spotify_client_id,
                client_secret=settings.spotify_client_secret.get_secret_value(),
                redirect_uri=settings.redirect_uri,
                scope=SCOPE,
                open_browser=False,
                requests_session=self._session(),
                cache_handler=cache,
            )
            auth.OAUTH_TOKEN_URL = settings.spotify_accounts_url.rstrip("/") + "/api/token"
            self._local.accounts = auth
        auth.cache_handler = cache
        auth.requests_timeout = timeout
        return auth


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return 1.0


def _answer(exc: spotipy.SpotifyException) -> _Answer:
    # spotipy's message is "{url}:\n {Spotify's message}"
    message = str(exc.msg).rpartition(":\n ")[2]
    return _Answer(int(exc.http_status), exc.headers or {}, message)


async def _call(
    client: Client,
    *,
    settings: Settings,
    attempt: Callable[[float], T],
    within: float | None = None,
) -> T:
    """`attempt(timeout)` on the pool, retried on 429, 5xx and transport errors; other error
    answers raise `_Answer`. Retries stop where the next wait would pass the deadline:
    `spotify_request_seconds`, or `within` seconds when that is sooner."""
    seconds = settings.spotify_request_seconds
    if within is not None:
        seconds = min(seconds, within)
    deadline = time.monotonic() + seconds
    loop = asyncio.get_running_loop()

    def timed() -> T:
        # measured when a thread takes it up: time spent queued for one counts
        left = min(settings.spotify_timeout_seconds, deadline - time.monotonic())
        if left <= 0:
            raise requests.Timeout("the call's deadline passed before it was sent")
        return attempt(left)

    tries = 0
    while True:
        tries += 1
        backoff = settings.spotify_backoff_seconds * 2 ** (tries - 1)
        try:
            try:
                # an attempt never outlives the deadline: one still queued is dropped, one
                # running ends by its own timeout (set from the same deadline)
                async with asyncio.timeout(max(0.0, deadline - time.monotonic()) + 0.5):
                    return await loop.run_in_executor(client.pool, timed)
            except spotipy.SpotifyException as exc:
                raise _answer(exc) from None
        except (requests.RequestException, TimeoutError) as exc:
            if tries >= settings.spotify_attempts or time.monotonic() + backoff > deadline:
                raise SpotifyError(502, f"unreachable: {exc.__class__.__name__}") from exc
            log.warning("Spotify unreachable (%s); retry %d in %.1fs", exc, tries, backoff)
            await asyncio.sleep(backoff)
        except _Answer as answer:
            if answer.status == 429:
                wait = _retry_after(answer.headers)
                too_long = (
                    wait > settings.spotify_max_retry_after or time.monotonic() + wait > deadline
                )
                if tries >= settings.spotify_attempts or too_long:
                    raise RateLimited(wait) from None
                log.info("Spotify rate limit; waiting %.1fs as asked", wait)
                await asyncio.sleep(wait)
            elif answer.status >= 500:
                if tries >= settings.spotify_attempts or time.monotonic() + backoff > deadline:
                    raise SpotifyError(answer.status, answer.message) from None
                log.warning("Spotify %d; retry %d in %.1fs", answer.status, tries, backoff)
                await asyncio.sleep(backoff)
            else:
                raise


async def web(client: Client, *, settings: Settings, token: str, call: Call) -> Any:
    """One Web API call, e.g. `lambda sp: sp.search(...)`, with the caller's token."""
    try:
        return await _call(
            client,
            settings=settings,
            attempt=lambda timeout: call(client.web(token=token, timeout=timeout)),
        )
    except _Answer as answer:
        if answer.status == 401:
            raise Unauthorized(401, answer.message) from None
        raise SpotifyError(answer.status, answer.message) from None


async def exchange(client: Client, *, settings: Settings, code: str, cache: CacheHandler) -> None:
    """Trade an authorization code for tokens, which spotipy hands to `cache`."""

    def attempt(timeout: float) -> None:
        accounts = client.accounts(cache=cache, timeout=timeout)
        accounts.get_access_token(code, as_dict=False, check_cache=False)

    await _grant(client, settings=settings, attempt=attempt)


async def refresh(
    client: Client, *, settings: Settings, refresh_token: str, cache: CacheHandler, within: float
) -> None:
    """Refresh an access token, within `within` seconds; spotipy hands the answer to `cache`
    (with the refresh token it was given when Spotify sent no new one)."""

    def attempt(timeout: float) -> None:
        client.accounts(cache=cache, timeout=timeout).refresh_access_token(refresh_token)

    await _grant(client, settings=settings, attempt=attempt, within=within)


async def _grant(
    client: Client,
    *,
    settings: Settings,
    attempt: Callable[[float], None],
    within: float | None = None,
) -> None:
    try:
        await _call(client, settings=settings, attempt=attempt, within=within)
    except _Answer as answer:
        raise GrantError(answer.status, answer.error or "invalid_request", answer.message) from None
