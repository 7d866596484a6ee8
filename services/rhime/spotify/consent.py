"""Where Spotify sends the browser back after its consent page: the outcome of the OAuth
callback, and the answer each outcome gets."""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Mapping
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from rhime.kit import access_tokens, errors, outbox
from rhime.kit import app as kit_app
from rhime.music import store
from rhime.music.spotify import api
from rhime.spotify import access, oauth
from rhime.spotify.settings import Settings

log = logging.getLogger("rhime.spotify")
# Tells the gateway the caller's Spotify connection just changed, so the browser's cookie
# follows at once; every other token follows by event (`user.disconnected`).
CONNECTED_HEADER = access_tokens.SPOTIFY_HEADER


class Outcome(enum.StrEnum):
    """How a callback ended; a failure's value is the reason the connect page shows."""

    CONNECTED = "connected"
    NO_STATE = "invalid_state"
    DENIED = "access_denied"
    UNKNOWN_STATE = "unknown_state"  # oauth.StateError's reasons
    STATE_MISMATCH = "state_mismatch"
    REFUSED = "exchange_failed"
    UNAVAILABLE = "spotify_unavailable"


# What API clients read for each failure; browsers go back to the connect page instead.
MESSAGES: Mapping[Outcome, str] = {
    Outcome.NO_STATE: "The state parameter is missing.",
    Outcome.DENIED: "Spotify access was not granted.",
    Outcome.UNKNOWN_STATE: "The authorization state is invalid or was used.",
    Outcome.STATE_MISMATCH: "The authorization state is invalid or was used.",
    Outcome.REFUSED: "Spotify refused the authorization code.",
    Outcome.UNAVAILABLE: "Spotify is unavailable; try again.",
}


async def finish(
    kit: kit_app.Kit,
    *,
    settings: Settings,
    user_id: str,
    state: str | None,
    code: str | None,
    error: str | None,
) -> Outcome:
    """Check the state, then store the grant as a new connection and publish it."""
    if not state:
        return Outcome.NO_STATE
    if error or not code:
        # the user declined; still use up the state
        with contextlib.suppress(oauth.StateError):
            await oauth.consume_state(kit.redis, settings=settings, state=state, user_id=user_id)
        return Outcome.DENIED
    try:
        number = await oauth.complete(
            kit.database,
            kit.redis,
            access.client(kit),
            settings=settings,
            user_id=user_id,
            state=state,
            code=code,
        )
    except oauth.StateError as exc:
        return Outcome(str(exc))
    except api.GrantError:
        return Outcome.REFUSED
    except api.SpotifyError:
        log.warning("Spotify unavailable during the callback", exc_info=True)
        return Outcome.UNAVAILABLE
    # `user.authorized` now: the recommendation component fetches the taste on it
    await outbox.try_flush(kit, collection=store.TOKENS, doc_id=user_id)
    log.info("user %s connected Spotify (connection %d)", user_id, number)
    return Outcome.CONNECTED


def respond(request: Request, outcome: Outcome) -> Response:
    if outcome is Outcome.CONNECTED:
        return RedirectResponse("/", status_code=302, headers={CONNECTED_HEADER: "1"})
    if wants_json(request):
        return errors.envelope(400, [{"msg": MESSAGES[outcome]}])
    return RedirectResponse(f"/connect?{urlencode({'error': outcome.value})}", status_code=302)


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")
