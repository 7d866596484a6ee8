"""A fake of Spotify's accounts service and Web API, as one FastAPI app.

It serves the synthetic population from :mod:`rhime.music.population`: ``/authorize``
auto-consents for a fake user (``login_hint``, or the next user in order), ``/api/token``
follows the authorization-code and refresh-token grants, and ``/v1`` serves profile, top
items, artists, tracks and search in Spotify's JSON shapes and error formats.

Run: ``uvicorn --factory rhime.fakespotify.app:create_app`` (settings from
``RHIME_FAKE_SPOTIFY_*``). Point spotipy at it with ``sp.prefix = base + "/v1/"`` and a
SpotifyOAuth subclass whose ``OAUTH_AUTHORIZE_URL``/``OAUTH_TOKEN_URL`` are on ``base``.
"""

import time
from collections.abc import Callable

from fastapi import FastAPI

from rhime.fakespotify import accounts, admin, errors, webapi
from rhime.fakespotify.settings import FakeSpotifySettings
from rhime.fakespotify.state import FakeState
from rhime.music import population as pop

# Callers build the app with its settings, so both are this entry point's interface.
__all__ = ["FakeSpotifySettings", "create_app"]


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
    errors.install(app)
    app.include_router(accounts.router(settings=settings, spec=spec, state=state, clock=clock))
    app.include_router(webapi.router(settings=settings, spec=spec, state=state, clock=clock))
    app.include_router(admin.router(state=state))
    return app
