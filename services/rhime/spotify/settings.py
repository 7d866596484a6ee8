"""Settings of the components that talk to Spotify (the service and the recommendation worker)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from rhime.kit.settings import Settings as KitSettings


class Settings(KitSettings):
    spotify_client_id: str = Field(min_length=1)
    spotify_client_secret: SecretStr = Field(min_length=1)
    spotify_accounts_url: str = "https://accounts.spotify.com"
    spotify_api_url: str = "https://api.spotify.com"
    # the gateway's public URL: Spotify redirects the browser to {public_url}/api/spotify/callback
    public_url: str = "http://localhost:8080"
    # Fernet key for tokens at rest
    encryption_key: SecretStr = Field(min_length=44)
    # retries of Spotify calls: 429 waits Retry-After up to the cap, 5xx backs off
    spotify_attempts: int = Field(default=5, ge=1)
    spotify_backoff_seconds: float = Field(default=0.5, ge=0)
    spotify_max_retry_after: float = Field(default=30.0, ge=0)
    spotify_timeout_seconds: float = Field(default=10.0, gt=0)
    oauth_state_seconds: int = Field(default=600, ge=30)

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/api/spotify/callback"
