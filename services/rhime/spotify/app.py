"""The spotify service: connect Spotify (OAuth), the caller's access token, track search,
a user's top artists / tracks / genres, disconnect, and the gateway's connected check."""

# No ``from __future__ import annotations``: FastAPI reads the route signatures.

import asyncio
import contextlib
import datetime
import logging
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from rhime import events
from rhime.kit import access_tokens, bus, errors, identity, outbox
from rhime.kit import app as kit_app
from rhime.music import store, tastes
from rhime.music.spotify import api, tokens
from rhime.spotify import archive, artists, deletion, oauth, search
from rhime.spotify.settings import Settings

log = logging.getLogger("rhime.spotify")
# Tells the gateway the caller's Spotify connection just changed, so the browser's cookie
# follows at once; every other token follows by event (`user.disconnected`).
CONNECTED_HEADER = access_tokens.SPOTIFY_HEADER


class AuthorizeOut(BaseModel):
    url: str


class TokenOut(BaseModel):
    token: str
    expiresAt: datetime.datetime


class SearchOut(BaseModel):
    tracks: list[search.Track]


class ArtistsOut(BaseModel):
    artists: list[artists.Artist]


class TopItem(BaseModel):
    id: str
    name: str
    weight: float


class TopOut(BaseModel):
    userId: str
    kind: str
    timeRange: str
    updatedAt: datetime.datetime
    items: list[TopItem]


class ConnectedOut(BaseModel):
    connected: bool


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _failed(request: Request, reason: str, message: str) -> Response:
    """Browsers go back to the connect page with a reason; API clients get the envelope."""
    if _wants_json(request):
        return errors.envelope(400, [{"msg": message}])
    return RedirectResponse(f"/connect?{urlencode({'error': reason})}", status_code=302)


def create(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/api/spotify", tags=["spotify"])
    internal = APIRouter(prefix="/internal", include_in_schema=False)

    def spotify(kit: kit_app.Kit) -> api.Client:
        client: api.Client = kit.extras["spotify"]
        return client

    async def on_ready(kit: kit_app.Kit) -> None:
        kit.extras["spotify"] = api.Client(settings)

    async def close(kit: kit_app.Kit) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await kit.extras["spotify"].aclose()

    @router.get("/authorize", response_model=None)
    async def authorize(request: Request, user: identity.User, kit: kit_app.KitDep) -> Response:
        """Send the browser to Spotify's consent page (JSON clients get the URL)."""
        url = await oauth.begin(kit.redis, settings=settings, user_id=user.user_id)
        if _wants_json(request):
            return JSONResponse(AuthorizeOut(url=url).model_dump())
        return RedirectResponse(url, status_code=302)

    @router.get("/callback", response_model=None)
    async def callback(
        request: Request,
        user: identity.User,
        kit: kit_app.KitDep,
        code: Annotated[str | None, Query(max_length=2000)] = None,
        state: Annotated[str | None, Query(max_length=200)] = None,
        error: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        if not state:
            return _failed(request, "invalid_state", "The state parameter is missing.")
        if error or not code:
            # the user declined; still use up the state
            with contextlib.suppress(oauth.StateError):
                await oauth.consume_state(
                    kit.redis, settings=settings, state=state, user_id=user.user_id
                )
            return _failed(request, "access_denied", "Spotify access was not granted.")
        try:
            number = await oauth.complete(
                kit.database,
                kit.redis,
                spotify(kit),
                settings=settings,
                user_id=user.user_id,
                state=state,
                code=code,
            )
        except oauth.StateError as exc:
            return _failed(request, str(exc), "The authorization state is invalid or was used.")
        except api.GrantError:
            return _failed(request, "exchange_failed", "Spotify refused the authorization code.")
        except api.SpotifyError:
            log.warning("Spotify unavailable during the callback", exc_info=True)
            return _failed(request, "spotify_unavailable", "Spotify is unavailable; try again.")
        # `user.authorized` now: the recommendation component fetches the taste on it
        await outbox.try_flush(kit, collection=store.TOKENS, doc_id=user.user_id)
        log.info("user %s connected Spotify (connection %d)", user.user_id, number)
        return RedirectResponse("/", status_code=302, headers={CONNECTED_HEADER: "1"})

    @router.get("/token")
    async def token(user: identity.User, kit: kit_app.KitDep) -> TokenOut:
        """The caller's access token, refreshed first when it expires within a minute."""
        value, expires = await _access(kit, user.user_id)
        return TokenOut(token=value, expiresAt=expires)

    @router.get("/search")
    async def search_tracks(
        user: identity.User,
        kit: kit_app.KitDep,
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> SearchOut:
        if not q.strip():
            raise errors.bad_request("The search query is empty.", field="q")
        value, _ = await _access(kit, user.user_id)
        try:
            body = await api.web(
                spotify(kit),
                settings=settings,
                token=value,
                call=lambda sp: sp.search(q, limit=limit, type="track"),
            )
        except api.SpotifyError as exc:
            raise _upstream(exc) from None
        return SearchOut(tracks=search.tracks(body))

    @router.get("/tracks/{trackId}")
    async def track(
        track_id: Annotated[str, Path(alias="trackId", pattern=search.TRACK_ID)],
        user: identity.User,
        kit: kit_app.KitDep,
    ) -> search.Track:
        """One track as Spotify describes it, looked up with the caller's token: the post
        service takes a track's name, artists, link and cover from here, never from clients."""
        value, _ = await _access(kit, user.user_id)
        try:
            body = await api.web(
                spotify(kit), settings=settings, token=value, call=lambda sp: sp.track(track_id)
            )
        except api.SpotifyError as exc:
            if exc.status in (400, 404):
                raise errors.ApiError(
                    404, "No such track exists on Spotify.", field="trackId"
                ) from None
            raise _upstream(exc) from None
        if not isinstance(body, dict) or body.get("id") != track_id:
            raise errors.ApiError(502, errors.message(502))
        return search.compact(body)

    @router.get("/artists")
    async def artist_details(
        user: identity.User,
        kit: kit_app.KitDep,
        ids: Annotated[str, Query(min_length=1, max_length=3300)],
    ) -> ArtistsOut:
        """Artists' names, pictures and links, in the order asked (unknown ids left out)."""
        wanted = list(dict.fromkeys(i for i in ids.split(",") if i))
        if not 1 <= len(wanted) <= artists.MAX_IDS:
            raise errors.bad_request(f"Give 1 to {artists.MAX_IDS} ids.", field="ids")
        if not all(re.fullmatch(search.TRACK_ID, i) for i in wanted):
            raise errors.bad_request("Invalid ids", field="ids")

        def key_of(artist_id: str) -> str:
            return settings.key("spotify-artist", artist_id)

        known = dict(
            zip(
                wanted,
                await artists.cached(kit.redis, keys=[key_of(i) for i in wanted]),
                strict=True,
            )
        )
        missing = [i for i, a in known.items() if a is None]
        if missing:
            value, _ = await _access(kit, user.user_id)
            try:
                body = await api.web(
                    spotify(kit),
                    settings=settings,
                    token=value,
                    call=lambda sp: sp.artists(missing),
                )
            except api.SpotifyError as exc:
                raise _upstream(exc) from None
            fresh = artists.from_body(body)
            await artists.remember(kit.redis, key_of=key_of, artists=fresh)
            known.update((a.id, a) for a in fresh)
        return ArtistsOut(artists=[a for i in wanted if (a := known.get(i)) is not None])

    @router.get("/users/{userId}/top/{kind}")
    async def top_items(
        user_id: Annotated[str, Path(alias="userId", min_length=1, max_length=64)],
        kind: Literal["artists", "tracks", "genres"],
        _caller: identity.User,
        kit: kit_app.KitDep,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
    ) -> TopOut:
        doc = await kit.database[store.TASTES].find_one(
            {"_id": user_id}, {"raw": 1, "names": 1, "timeRange": 1, "fetchedAt": 1}
        )
        if doc is None:
            raise errors.not_found("No music taste is known for this user yet.")
        return TopOut(
            userId=user_id,
            kind=kind,
            timeRange=doc.get("timeRange", ""),
            updatedAt=doc["fetchedAt"],
            items=[TopItem(**item) for item in tastes.top(doc, category=kind, limit=limit)],
        )

    @router.delete("/connection", status_code=204)
    async def disconnect(user: identity.User, kit: kit_app.KitDep) -> Response:
        """Delete the tokens (publishing `user.disconnected`, which closes the gate), then
        the taste, index entries and recommendations."""
        await tokens.disconnect(kit.database, user_id=user.user_id)
        await outbox.try_flush(kit, collection=store.TOKENS, doc_id=user.user_id)
        await tastes.forget(kit.database, user_id=user.user_id)
        return Response(status_code=204, headers={CONNECTED_HEADER: "0"})

    @internal.get("/spotify/export/{user_id}")
    async def export(user_id: str, _caller: identity.Service, kit: kit_app.KitDep) -> Any:
        """Spotify connection, taste and recommendations, for the user's data export
        (components only; never the tokens)."""
        return await archive.export(kit.database, user_id=user_id)

    @internal.get("/connected/{user_id}")
    async def connected(
        user_id: str, _caller: identity.Service, kit: kit_app.KitDep
    ) -> ConnectedOut:
        return ConnectedOut(connected=await tokens.is_connected(kit.database, user_id=user_id))

    async def _access(kit: kit_app.Kit, user_id: str) -> tuple[str, datetime.datetime]:
        try:
            return await tokens.access_token(
                kit.database, kit.redis, spotify(kit), settings=settings, user_id=user_id
            )
        except tokens.NotConnected:
            raise errors.not_found("Spotify is not connected.") from None
        except tokens.Revoked:
            await outbox.try_flush(kit, collection=store.TOKENS, doc_id=user_id)
            await tastes.forget(kit.database, user_id=user_id)
            raise errors.conflict("Spotify access was revoked; connect again.") from None
        except api.SpotifyError as exc:
            raise _upstream(exc) from None

    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        async def user_deleted(event: events.UserDeleted) -> None:
            await deletion.forget(kit, settings=settings, user_id=event.user_id)

        return [bus.Subscription(event=events.UserDeleted, handler=user_deleted, ack_wait=90.0)]

    indexes: Any = store.INDEXES
    return kit_app.create_app(
        settings,
        title="spotify",
        database=store.DATABASE,
        api_prefix="/api/spotify",
        routers=[router, internal],
        indexes=indexes,
        outboxes=[store.TOKENS],
        on_ready=[on_ready],
        tasks=[close],
        subscriptions=subscriptions,
        description="Spotify OAuth, tokens, top artists, tracks and genres.",
    )


def _upstream(exc: api.SpotifyError) -> errors.ApiError:
    if isinstance(exc, api.RateLimited):
        return errors.ApiError(
            429,
            "Spotify is rate limiting; try again later.",
            headers={"Retry-After": str(int(exc.retry_after) or 1)},
        )
    if exc.status == 400:
        return errors.bad_request(f"Spotify rejected the request: {exc.message}")
    return errors.ApiError(502, errors.message(502))
