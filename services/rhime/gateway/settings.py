"""Gateway settings (RHIME_* environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from rhime.kit.settings import Settings as KitSettings


class Settings(KitSettings):
    access_token_secret: SecretStr = Field(min_length=32)
    cookie_secure: bool = True
    public_url: str = "http://localhost:8080"
    # Per component base URL overriding the service URL template, e.g. {"web": "http://..."}.
    upstreams: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=1_000_000, ge=1)
    connect_timeout_seconds: float = Field(default=3.0, gt=0)
    upstream_timeout_seconds: float = Field(default=30.0, gt=0)
    pool_size: int = Field(default=500, ge=1)
    # Requests per window: per client IP on auth routes (sign-up, sign-in), per user for
    # signed-in requests, and per IP for other signed-out requests (pages, their assets).
    rate_limit_ip: int = Field(default=60, ge=1)
    rate_limit_user: int = Field(default=1200, ge=1)
    rate_limit_anonymous: int = Field(default=600, ge=1)
    rate_window_seconds: int = Field(default=60, ge=1)
    # Behind a trusted load balancer the client address is the first X-Forwarded-For entry.
    trust_forwarded_for: bool = False
    # How long "Spotify is connected" / "is not" answers are remembered.
    connected_ttl_seconds: int = Field(default=86400, ge=1)
    not_connected_ttl_seconds: int = Field(default=2, ge=1)
