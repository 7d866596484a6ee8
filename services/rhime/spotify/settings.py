"""Settings of the spotify service."""

from __future__ import annotations

from rhime.music.spotify.settings import Settings as SpotifySettings


class Settings(SpotifySettings):
    """Spotify access as the recommendation worker has it; OAuth needs nothing more."""
