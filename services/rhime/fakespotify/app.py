"""A fake of Spotify's accounts service and Web API, as one FastAPI app.

It serves the synthetic population from :mod:`rhime.music.population`: ``/authorize``
auto-consents for a fake user (``login_hint``, or the next user in order), ``/api/token``
follows the authorization-code and refresh-token grants, and ``/v1`` serves profile, top
items, artists, tracks and search in Spotify's JSON shapes and error formats.

Run: ``uvicorn --factory rhime.fakespotify.app:create_app`` (settings from
``RHIME_FAKE_SPOTIFY_*``). Point spotipy at it with ``sp.prefix = base + "/v1/"`` and a
SpotifyOAuth subclass whose ``OAUTH_AUTHORIZE_URL``/``OAUTH_TOKEN_URL`` are on ``base``.
"""

# No ``from __future__ import annotations``: FastAPI must evaluate the route signatures,
# whose Annotated dependencies are closures over one app's state.

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from rhime.music import population as pop

MAX_LIMIT = 50
MAX_IDS = 50
CODE_LIFETIME = 600.0


class FakeSpotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RHIME_FAKE_SPOTIFY_")

    seed: int = 1
    population: int = 1000
    communities: int = 10
    client_id: str = "rhime-fake-client-id"
    client_secret: str = "rhime-fake-client-secret"
    token_lifetime: int = 3600  # seconds, as Spotify's expires_in
    # every Nth refresh of a grant returns a new refresh token and revokes the old one
    rotate_refresh_every: int = 2
    # base of image links as browsers reach the fake, when that is not how its callers do
    # (in a cluster); default: the request's own base URL
    public_url: str | None = None


class FaultRequest(BaseModel):
    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=1)
    retry_after: int | None = Field(default=None, ge=0)
    path_prefix: str = "/v1/"
    # seconds the fault takes to answer: a slow Spotify
    delay: float = Field(default=0.0, ge=0, le=60)


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


@dataclasses.dataclass(slots=True)
class _Code:
    user: int
    redirect_uri: str
    scope: str
    expires_at: float


@dataclasses.dataclass(slots=True)
class _Access:
    user: int
    scope: str
    expires_at: float


@dataclasses.dataclass(slots=True)
class _Grant:
    user: int
    scope: str
    refreshes: int = 0


@dataclasses.dataclass(slots=True)
class _Fault:
    status: int
    remaining: int
    retry_after: int | None
    path_prefix: str
    delay: float = 0.0


@dataclasses.dataclass(slots=True)
class FakeState:
    """Everything the fake remembers; one per app instance."""

    next_user: int = 0
    codes: dict[str, _Code] = dataclasses.field(default_factory=dict)
    access: dict[str, _Access] = dataclasses.field(default_factory=dict)
    refresh: dict[str, _Grant] = dataclasses.field(default_factory=dict)
    faults: list[_Fault] = dataclasses.field(default_factory=list)
    v1_requests: int = 0
    token_requests: int = 0


def _spotify_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )


def create_app(
    settings: FakeSpotifySettings | None = None, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    settings = settings or FakeSpotifySettings()
    spec = pop.PopulationSpec(
        seed=settings.seed, users=settings.population, communities=settings.communities
    )
    state = FakeState()
    app = FastAPI(title="Fake Spotify", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = state
    app.state.settings = settings

    @app.exception_handler(SpotifyError)
    async def spotify_error(_request: Request, exc: SpotifyError) -> Response:
        return _spotify_error(exc.status, exc.message, exc.headers)

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
        return _spotify_error(400, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        message = "Service not found" if exc.status_code == 404 else str(exc.detail)
        return _spotify_error(exc.status_code, message)

    app.include_router(_accounts_router(settings, spec, state, clock))
    app.include_router(_api_router(settings, spec, state, clock))
    app.include_router(_admin_router(state))
    return app


def _fault_injector(state: FakeState) -> Callable[[Request], Any]:
    """A dependency that answers with the next injected fault whose prefix matches the path
    (Web API paths by default; `/api/token` makes the accounts service slow or failing)."""

    async def faults(request: Request) -> None:
        if request.url.path.startswith("/v1/"):
            state.v1_requests += 1
        for fault in state.faults:
            if fault.remaining > 0 and request.url.path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining == 0:
                    state.faults.remove(fault)
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                message = {
                    429: "API rate limit exceeded",
                    500: "Server error",
                    502: "Bad gateway",
                    503: "Service unavailable",
                }.get(fault.status, "Injected fault")
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                raise SpotifyError(fault.status, message, headers)

    return faults


def _accounts_router(
    settings: FakeSpotifySettings,
    spec: pop.PopulationSpec,
    state: FakeState,
    clock: Callable[[], float],
) -> APIRouter:
    router = APIRouter()

    @router.get("/authorize", response_model=None)
    async def authorize(
        client_id: str = "",
        response_type: str = "",
        redirect_uri: str = "",
        scope: str = "",
        state_: Annotated[str | None, Query(alias="state")] = None,
        show_dialog: str | None = None,
        login_hint: str | None = None,
    ) -> Response:
        # Spotify shows these on its own page rather than redirecting
        if client_id != settings.client_id:
            return PlainTextResponse("INVALID_CLIENT: Invalid client", status_code=400)
        if not redirect_uri.startswith(("http://", "https://")):
            return PlainTextResponse("INVALID_CLIENT: Invalid redirect URI", status_code=400)
        params: dict[str, str] = {}
        if response_type != "code":
            params["error"] = "unsupported_response_type"
        else:
            user = _hinted_user(login_hint, spec)
            if user is None:
                user = state.next_user % spec.users
                state.next_user += 1
            code = secrets.token_urlsafe(32)
            state.codes[code] = _Code(user, redirect_uri, scope, clock() + CODE_LIFETIME)
            params["code"] = code
        if state_ is not None:
            params["state"] = state_
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)

    @router.post("/api/token", dependencies=[Depends(_fault_injector(state))])
    async def token(
        grant_type: Annotated[str, Form()] = "",
        code: Annotated[str | None, Form()] = None,
        redirect_uri: Annotated[str | None, Form()] = None,
        refresh_token: Annotated[str | None, Form()] = None,
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        state.token_requests += 1
        _check_client(settings, authorization, client_id, client_secret)
        now = clock()
        if grant_type == "authorization_code":
            # single use: a replayed code fails even if the first exchange did
            found = state.codes.pop(code or "", None)
            if found is None or found.expires_at < now:
                raise OAuthError("invalid_grant", "Invalid authorization code")
            if redirect_uri != found.redirect_uri:
                raise OAuthError("invalid_grant", "Invalid redirect URI")
            refresh = secrets.token_urlsafe(48)
            state.refresh[refresh] = _Grant(found.user, found.scope)
            return _issue(state, settings, found.user, found.scope, now) | {
                "refresh_token": refresh
            }
        if grant_type == "refresh_token":
            grant = state.refresh.get(refresh_token or "")
            if grant is None:
                raise OAuthError("invalid_grant", "Invalid refresh token")
            grant.refreshes += 1
            body = _issue(state, settings, grant.user, grant.scope, now)
            every = settings.rotate_refresh_every
            if every > 0 and grant.refreshes % every == 0:
                rotated = secrets.token_urlsafe(48)
                del state.refresh[refresh_token or ""]
                state.refresh[rotated] = grant
                body["refresh_token"] = rotated
            return body
        if not grant_type:
            raise OAuthError("unsupported_grant_type", "grant_type parameter is missing")
        raise OAuthError(
            "unsupported_grant_type",
            f"grant_type must be authorization_code or refresh_token, not {grant_type}",
        )

    return router


def _hinted_user(hint: str | None, spec: pop.PopulationSpec) -> int | None:
    if not hint:
        return None
    index = int(hint) if hint.isdigit() else pop.user_index(hint)
    if index is None or not 0 <= index < spec.users:
        return None
    return index


def _check_client(
    settings: FakeSpotifySettings,
    authorization: str | None,
    client_id: str | None,
    client_secret: str | None,
) -> None:
    if authorization and authorization.startswith("Basic "):
        try:
            decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, _, client_secret = decoded.partition(":")
    if client_id != settings.client_id or client_secret != settings.client_secret:
        raise OAuthError("invalid_client", "Invalid client")


def _issue(
    state: FakeState, settings: FakeSpotifySettings, user: int, scope: str, now: float
) -> dict[str, Any]:
    access = secrets.token_urlsafe(48)
    state.access[access] = _Access(user, scope, now + settings.token_lifetime)
    return {
        "access_token": access,
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": settings.token_lifetime,
    }


def _admin_router(state: FakeState) -> APIRouter:
    router = APIRouter(prefix="/_fake")

    @router.post("/faults")
    async def add_fault(fault: FaultRequest) -> dict[str, Any]:
        state.faults.append(
            _Fault(fault.status, fault.count, fault.retry_after, fault.path_prefix, fault.delay)
        )
        return {"faults": [dataclasses.asdict(f) for f in state.faults]}

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        state.faults.clear()
        state.codes.clear()
        state.access.clear()
        state.refresh.clear()
        state.next_user = 0
        state.v1_requests = 0
        state.token_requests = 0
        return {"reset": True}

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        return {
            "v1_requests": state.v1_requests,
            "token_requests": state.token_requests,
            "faults": [dataclasses.asdict(f) for f in state.faults],
            "next_user": state.next_user,
        }

    @router.get("/image/{key}.svg")
    async def image(key: str) -> Response:
        hue = int(hashlib.blake2b(key.encode(), digest_size=2).hexdigest(), 16) % 360
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
            f'<rect width="64" height="64" fill="hsl({hue},55%,55%)"/></svg>'
        )
        return Response(svg, media_type="image/svg+xml")

    return router


def _api_router(
    settings: FakeSpotifySettings,
    spec: pop.PopulationSpec,
    state: FakeState,
    clock: Callable[[], float],
) -> APIRouter:
    async def bearer(authorization: Annotated[str | None, Header()] = None) -> _Access:
        if not authorization:
            raise SpotifyError(401, "No token provided")
        if not authorization.startswith("Bearer "):
            raise SpotifyError(400, "Only valid bearer authentication supported")
        found = state.access.get(authorization.removeprefix("Bearer "))
        if found is None:
            raise SpotifyError(401, "Invalid access token")
        if found.expires_at <= clock():
            raise SpotifyError(401, "The access token expired")
        return found

    router = APIRouter(prefix="/v1", dependencies=[Depends(_fault_injector(state))])
    Auth = Annotated[_Access, Depends(bearer)]
    cat = pop.catalogue(spec)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def images(request: Request, key: str) -> list[dict[str, Any]]:
        url = f"{(settings.public_url or base(request)).rstrip('/')}/_fake/image/{key}.svg"
        return [{"url": url, "height": size, "width": size} for size in (640, 300, 64)]

    def simple_artist(request: Request, artist: pop.Artist) -> dict[str, Any]:
        return {
            "id": artist.id,
            "name": artist.name,
            "type": "artist",
            "uri": f"spotify:artist:{artist.id}",
            "href": f"{base(request)}/v1/artists/{artist.id}",
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist.id}"},
        }

    def artist_json(request: Request, artist: pop.Artist) -> dict[str, Any]:
        return simple_artist(request, artist) | {
            "genres": list(artist.genres),
            "popularity": artist.popularity,
            "followers": {"href": None, "total": artist.followers},
            "images": images(request, artist.id),
        }

    def track_json(request: Request, track: pop.Track) -> dict[str, Any]:
        album = cat.albums[track.album_id]
        album_artist = cat.artists[album.artist_id]
        return {
            "id": track.id,
            "name": track.name,
            "type": "track",
            "uri": f"spotify:track:{track.id}",
            "href": f"{base(request)}/v1/tracks/{track.id}",
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track.id}"},
            "external_ids": {},
            "artists": [simple_artist(request, cat.artists[a]) for a in track.artist_ids],
            "album": {
                "id": album.id,
                "name": album.name,
                "type": "album",
                "album_type": "album",
                "total_tracks": 4,
                "release_date": album.release_date,
                "release_date_precision": "day",
                "uri": f"spotify:album:{album.id}",
                "href": f"{base(request)}/v1/albums/{album.id}",
                "external_urls": {"spotify": f"https://open.spotify.com/album/{album.id}"},
                "images": images(request, album.id),
                "artists": [simple_artist(request, album_artist)],
            },
            "popularity": track.popularity,
            "duration_ms": track.duration_ms,
            "explicit": False,
            "is_local": False,
            "disc_number": 1,
            "track_number": track.track_number,
            "preview_url": None,
        }

    def paging(
        request: Request, items: Sequence[dict[str, Any]], total: int, limit: int, offset: int
    ) -> dict[str, Any]:
        def link(at: int) -> str:
            params = dict(request.query_params) | {"offset": str(at), "limit": str(limit)}
            return f"{base(request)}{request.url.path}?{urlencode(params)}"

        return {
            "href": link(offset),
            "items": list(items),
            "limit": limit,
            "offset": offset,
            "total": total,
            "next": link(offset + limit) if offset + limit < total else None,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
        }

    Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
    Offset = Annotated[int, Query(ge=0)]
    TimeRangeQuery = Annotated[Literal["short_term", "medium_term", "long_term"], Query()]

    def ids_param(ids: str) -> list[str]:
        wanted = [i for i in ids.split(",") if i]
        if not wanted:
            raise SpotifyError(400, "invalid id")
        if len(wanted) > MAX_IDS:
            raise SpotifyError(400, "Too many ids requested")
        return wanted

    @router.get("/me")
    async def me(request: Request, access: Auth) -> dict[str, Any]:
        taste = pop.user_taste(spec, access.user)
        return {
            "id": taste.user_id,
            "display_name": taste.display_name,
            "type": "user",
            "uri": f"spotify:user:{taste.user_id}",
            "href": f"{base(request)}/v1/users/{taste.user_id}",
            "external_urls": {"spotify": f"https://open.spotify.com/user/{taste.user_id}"},
            "followers": {"href": None, "total": 0},
            "images": images(request, taste.user_id),
            "country": "SE",
            "product": "free",
        }

    @router.get("/me/top/{kind}")
    async def top(
        request: Request,
        access: Auth,
        kind: Literal["artists", "tracks"],
        limit: Limit = 20,
        offset: Offset = 0,
        time_range: TimeRangeQuery = "medium_term",
    ) -> dict[str, Any]:
        if "user-top-read" not in access.scope.split():
            raise SpotifyError(403, "Insufficient client scope")
        taste = pop.user_taste(spec, access.user, time_range=time_range)
        if kind == "artists":
            ids = [a.id for a in taste.artists]
            items = [artist_json(request, cat.artists[i]) for i in ids[offset : offset + limit]]
        else:
            ids = [t.id for t in taste.tracks]
            items = [track_json(request, cat.tracks[i]) for i in ids[offset : offset + limit]]
        return paging(request, items, len(ids), limit, offset)

    @router.get("/artists")
    async def artists(request: Request, _access: Auth, ids: str) -> dict[str, Any]:
        found = (cat.artists.get(i) for i in ids_param(ids))
        return {"artists": [artist_json(request, a) if a else None for a in found]}

    @router.get("/artists/{artist_id}")
    async def artist(request: Request, _access: Auth, artist_id: str) -> dict[str, Any]:
        found = cat.artists.get(artist_id)
        if found is None:
            raise SpotifyError(404, "Resource not found")
        return artist_json(request, found)

    @router.get("/tracks")
    async def tracks(request: Request, _access: Auth, ids: str) -> dict[str, Any]:
        found = (cat.tracks.get(i) for i in ids_param(ids))
        return {"tracks": [track_json(request, t) if t else None for t in found]}

    @router.get("/tracks/{track_id}")
    async def track(request: Request, _access: Auth, track_id: str) -> dict[str, Any]:
        found = cat.tracks.get(track_id)
        if found is None:
            raise SpotifyError(404, "Resource not found")
        return track_json(request, found)

    @router.get("/search")
    async def search(
        request: Request,
        _access: Auth,
        q: str = "",
        type: str = "",
        limit: Limit = 20,
        offset: Annotated[int, Query(ge=0, le=1000)] = 0,
        market: str | None = None,
    ) -> dict[str, Any]:
        if not q.strip():
            raise SpotifyError(400, "No search query")
        kinds = [k for k in type.split(",") if k]
        if not kinds or any(k not in ("track", "artist") for k in kinds):
            raise SpotifyError(400, "Unsupported type")
        words = q.lower().split()
        body: dict[str, Any] = {}
        if "track" in kinds:
            matches = [
                t
                for t in cat.tracks.values()
                if _matches(words, t.name, (cat.artists[a].name for a in t.artist_ids))
            ]
            matches.sort(key=lambda t: (-t.popularity, t.id))
            page = [track_json(request, t) for t in matches[offset : offset + limit]]
            body["tracks"] = paging(request, page, len(matches), limit, offset)
        if "artist" in kinds:
            found = [a for a in cat.artists.values() if _matches(words, a.name, ())]
            found.sort(key=lambda a: (-a.popularity, a.id))
            page = [artist_json(request, a) for a in found[offset : offset + limit]]
            body["artists"] = paging(request, page, len(found), limit, offset)
        return body

    return router


def _matches(words: Sequence[str], name: str, others: Any) -> bool:
    text = " ".join([name, *others]).lower()
    return all(word in text for word in words)
