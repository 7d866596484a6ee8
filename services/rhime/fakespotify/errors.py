"""Spotify's two error formats: the Web API's and the accounts service's."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException


class SpotifyError(Exception):
    """A Web API error, rendered as ``{"error": {"status", "message"}}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class OAuthError(Exception):
    """An accounts-service error, rendered as ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def spotify_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )


def install(app: FastAPI) -> None:
    """Answer every failure in the format the part of Spotify that failed uses."""

    @app.exception_handler(SpotifyError)
    async def on_spotify_error(_request: Request, exc: SpotifyError) -> Response:
        return spotify_error(exc.status, exc.message, exc.headers)

    @app.exception_handler(OAuthError)
    async def oauth_error(_request: Request, exc: OAuthError) -> Response:
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description}, status_code=exc.status
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:])
        message = f"Invalid {where}: {first.get('msg', 'bad request')}".strip()
        if request.url.path == "/api/token":
            return JSONResponse(
                {"error": "invalid_request", "error_description": message}, status_code=400
            )
        return spotify_error(400, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        message = "Service not found" if exc.status_code == 404 else str(exc.detail)
        return spotify_error(exc.status_code, message)
