"""Gateway settings (RHIME_* environment variables)."""

from __future__ import annotations

from pydantic import Field, IPvAnyNetwork, SecretStr

from rhime.kit.settings import Settings as KitSettings

# Where a metrics scraper runs: loopback and the private ranges pods and nodes live in.
_PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
)


class Settings(KitSettings):
    access_token_secret: SecretStr = Field(
        min_length=32,
        description="HS256 key that verifies access tokens and signs the reissued cookie once "
        "Spotify is connected; same as auth's (Secret `auth`)",
    )
    cookie_secure: bool = Field(
        default=True,
        description="mark the reissued `accessToken` cookie Secure (false only for plain-HTTP "
        "local runs)",
    )
    public_url: str = Field(
        default="http://localhost:8080",
        description="public base URL of the site; set for every component, not read by the gateway",
    )
    upstreams: dict[str, str] = Field(
        default_factory=dict,
        description="per-component base URLs the gateway forwards to, overriding "
        "`RHIME_SERVICE_URLS` and the template (JSON object)",
    )
    max_body_bytes: int = Field(
        default=1_000_000,
        ge=1,
        description="largest request body forwarded, in bytes; larger ones get 413",
    )
    connect_timeout_seconds: float = Field(
        default=3.0, gt=0, description="seconds to connect to an upstream before a 504"
    )
    upstream_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="seconds an upstream may stay silent between reads (504 if it has not "
        "answered yet); no limit on the whole exchange",
    )
    pool_size: int = Field(
        default=500,
        ge=1,
        description="most connections to upstreams at once, all components together",
    )
    rate_limit_ip: int = Field(
        default=60,
        ge=1,
        description="requests per window per client IP on auth routes (sign-up, sign-in)",
    )
    rate_limit_user: int = Field(
        default=1200, ge=1, description="requests per window per signed-in user"
    )
    rate_limit_anonymous: int = Field(
        default=600,
        ge=1,
        description="requests per window per client IP when signed out (pages and assets)",
    )
    rate_window_seconds: int = Field(
        default=60, ge=1, description="length of the rate-limit window, in seconds"
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default=[],
        description="address ranges of the proxies in front of the gateway (Ingress "
        "controller, load balancer) whose X-Forwarded-For is believed: the client is the "
        "right-most entry outside these ranges (JSON list of CIDRs, e.g. "
        '`["10.0.0.0/8"]`); empty: the TCP peer is the client',
    )
    metrics_networks: list[IPvAnyNetwork] = Field(
        default=list(_PRIVATE_NETWORKS),
        validate_default=True,
        description="peers the gateway's own `/metrics` answers (JSON list of CIDRs), and only "
        "when the request did not come through a proxy; everyone else gets 404",
    )
    redis_timeout_seconds: float = Field(
        default=0.25,
        gt=0,
        description="deadline for the rate-limit and sign-out check in Redis; past it, reads "
        "go on unlimited and writes by signed-in users get 503",
    )
    connected_ttl_seconds: int = Field(
        default=86400,
        ge=1,
        description='seconds a "Spotify is connected" answer is cached in Redis',
    )
    not_connected_ttl_seconds: int = Field(
        default=2,
        ge=1,
        description='seconds a "Spotify is not connected" answer is cached (short, so a '
        "fresh connection shows at once)",
    )
