"""The fake's settings, from ``RHIME_FAKE_SPOTIFY_*``."""

from pydantic_settings import BaseSettings, SettingsConfigDict


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
