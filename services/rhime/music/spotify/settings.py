"""Settings of the components that talk to Spotify (the service and the recommendation worker)."""

from __future__ import annotations

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator

from rhime.kit.settings import Settings as KitSettings


class Settings(KitSettings):
    spotify_client_id: str = Field(
        min_length=1, description="Spotify app client id (Secret `spotify`)"
    )
    spotify_client_secret: SecretStr = Field(
        min_length=1, description="Spotify app client secret (Secret `spotify`)"
    )
    spotify_accounts_url: str = Field(
        default="https://accounts.spotify.com",
        description="Spotify accounts service: authorization and token endpoints",
    )
    spotify_public_accounts_url: str | None = Field(
        default=None,
        description="accounts service as browsers reach it, for the consent page redirect "
        "(default: the accounts URL above)",
    )
    spotify_api_url: str = Field(
        default="https://api.spotify.com", description="Spotify Web API base URL"
    )
    public_url: str = Field(
        default="http://localhost:8080",
        description="the gateway's public URL; Spotify redirects the browser to "
        "`{public_url}/api/spotify/callback`, which must be registered with the app",
    )
    encryption_key: SecretStr = Field(
        min_length=44,
        description="Fernet key that encrypts stored Spotify tokens (Secret `auth`)",
    )
    spotify_attempts: int = Field(
        default=5,
        ge=1,
        description="tries of a Spotify call, the first included; 429, 5xx and network errors "
        "are retried",
    )
    spotify_backoff_seconds: float = Field(
        default=0.5,
        ge=0,
        description="seconds before the first retry after a 5xx or network error; doubles "
        "each time",
    )
    spotify_request_seconds: float = Field(
        default=20.0,
        gt=0,
        description="most seconds one Spotify call may take with its retries and waits "
        "(below the gateway's upstream timeout, so nobody waits on an abandoned request)",
    )
    spotify_max_retry_after: float = Field(
        default=30.0,
        ge=0,
        description="longest Retry-After, in seconds, waited on a 429; longer gives up at once",
    )
    spotify_timeout_seconds: float = Field(
        default=10.0, gt=0, description="seconds each connect, read or write to Spotify may take"
    )
    spotify_threads: int = Field(
        default=16,
        ge=1,
        le=256,
        description="threads that make Spotify calls (its client library is synchronous); "
        "calls beyond them wait for one, within their deadline",
    )
    spotify_refresh_seconds: float = Field(
        default=20.0,
        gt=0,
        description="overall deadline of one access-token refresh, retries included; the "
        "per-user refresh lock lives 10 s longer, so no other caller refreshes meanwhile",
    )
    oauth_state_seconds: int = Field(
        default=600,
        ge=30,
        description="seconds a user has to finish Spotify's consent screen (OAuth state lifetime)",
    )

    @field_validator("encryption_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr) -> SecretStr:
        # Checked at start-up: a bad key would otherwise fail only at the first connection.
        try:
            Fernet(value.get_secret_value().encode())
        except ValueError:
            raise ValueError("must be a Fernet key (32 url-safe base64-encoded bytes)") from None
        return value

    @property
    def refresh_lock_seconds(self) -> int:
        """The refresh lock outlives a refresh that hits its deadline, so a refresh token is
        never used by two callers at once."""
        return int(self.spotify_refresh_seconds) + 10

    @property
    def authorize_url(self) -> str:
        """Where the browser is sent for consent."""
        base = self.spotify_public_accounts_url or self.spotify_accounts_url
        return f"{base.rstrip('/')}/authorize"

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/api/spotify/callback"
