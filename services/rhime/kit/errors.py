"""The JSON error envelope `{"errors": [{"msg": ..., "field": ...}]}` for every error."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pymongo.errors
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("rhime.errors")

_STATUS_MESSAGES = {
    401: "The user is not authenticated.",
    403: "Forbidden.",
    404: "The resource cannot be found.",
    405: "Method not allowed.",
    413: "The request body is too large.",
    429: "Too many requests.",
    502: "An upstream service is unavailable.",
    503: "The service is not ready.",
    504: "An upstream service timed out.",
}


class Recovering(Exception):
    """A store lost data and what depends on it is being rebuilt: wait, as for an outage."""


# Errors that mean a store (Redis, MongoDB) could not be reached or answered in time.
_STORE_DOWN: tuple[type[BaseException], ...] = (
    Recovering,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    pymongo.errors.AutoReconnect,
    pymongo.errors.ServerSelectionTimeoutError,
    pymongo.errors.NetworkTimeout,
)


def store_down(exc: BaseException) -> bool:
    """Whether `exc` says a store could not be reached or answer in time: nothing is wrong
    with the request or event, and trying again later is right."""
    return isinstance(exc, _STORE_DOWN)


def store_of(exc: BaseException) -> str:
    """The store a `store_down` error came from, as `rhime_store_unavailable_total` names it."""
    return "redis" if isinstance(exc, redis.exceptions.RedisError) else "mongodb"


class ApiError(Exception):
    """Raised by handlers; rendered as the envelope with `status`."""

    def __init__(
        self,
        status: int,
        msg: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.items: list[dict[str, str]] = [_item(msg, field)]
        self.headers = headers


def _item(msg: str, field: str | None) -> dict[str, str]:
    return {"msg": msg, "field": field} if field else {"msg": msg}


def bad_request(msg: str, *, field: str | None = None) -> ApiError:
    return ApiError(400, msg, field=field)


def unauthenticated() -> ApiError:
    return ApiError(401, _STATUS_MESSAGES[401])


def forbidden(msg: str = _STATUS_MESSAGES[403]) -> ApiError:
    return ApiError(403, msg)


def not_found(msg: str = _STATUS_MESSAGES[404]) -> ApiError:
    return ApiError(404, msg)


def conflict(msg: str, *, field: str | None = None) -> ApiError:
    return ApiError(409, msg, field=field)


def unavailable(msg: str = _STATUS_MESSAGES[503]) -> ApiError:
    return ApiError(503, msg)


def envelope(
    status: int, items: Sequence[dict[str, str]], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"errors": list(items)}, status_code=status, headers=headers)


def message(status: int) -> str:
    return _STATUS_MESSAGES.get(status, "The request cannot be processed.")


def _validation_items(errors: Sequence[Any]) -> list[dict[str, str]]:
    items = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        msg = str(error.get("msg", "Invalid value"))
        if msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            msg, loc = "The request body is not valid JSON.", []
        items.append(_item(msg, ".".join(loc) or None))
    return items


def install(app: FastAPI, *, on_store_down: Callable[[BaseException], None] | None = None) -> None:
    """Route every error through the envelope; 500s never leak internals. `on_store_down`
    hears of each request a store outage turned into a 503."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return envelope(exc.status, exc.items, exc.headers)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code < 500 else None
        if detail in (None, "Not Found", "Method Not Allowed"):
            detail = message(exc.status_code)
        return envelope(exc.status_code, [_item(str(detail), None)], exc.headers)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return envelope(400, _validation_items(exc.errors()))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if store_down(exc):
            # A store restarting or unreachable: nothing was done, and trying again is right.
            log.warning("store unavailable on %s %s: %r", request.method, request.url.path, exc)
            if on_store_down is not None:
                on_store_down(exc)
            return envelope(503, [_item(message(503), None)], {"Retry-After": "1"})
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope(500, [_item("Internal server error.", None)])

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
