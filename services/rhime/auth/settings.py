"""Settings of the auth component."""

from __future__ import annotations

from pydantic import Field, SecretStr

from rhime.kit.settings import Settings as KitSettings


class Settings(KitSettings):
    access_token_secret: SecretStr = Field(
        min_length=32,
        description="HS256 key that signs access tokens; the gateway verifies with the same "
        "(Secret `auth`)",
    )
    cookie_secure: bool = Field(
        default=True,
        description="mark the `accessToken` cookie Secure (false only for plain-HTTP local runs)",
    )
    # argon2id at one of OWASP's equivalent profiles (46 MiB, t=1, p=1): two hashes at once
    # take 92 MiB, well inside the auth container's 384 Mi next to the process itself
    argon2_time_cost: int = Field(
        default=1, ge=1, description="argon2id passes over memory per password hash"
    )
    argon2_memory_kib: int = Field(
        default=47104,
        ge=8,
        description="argon2id memory per password hash, in KiB; times `hash_concurrency` it "
        "should stay under about 40 % of the container's memory limit",
    )
    argon2_parallelism: int = Field(
        default=1, ge=1, description="argon2id lanes (threads) per password hash"
    )
    hash_concurrency: int = Field(
        default=2,
        ge=1,
        description="password hashes computed at once per process; bounds CPU and memory "
        "(each takes the argon2 memory)",
    )
    hash_queue_limit: int = Field(
        default=16,
        ge=0,
        description="sign-ups and sign-ins waiting for a hashing slot per process; past it "
        "they get 503 with Retry-After at once",
    )
    signin_max_failures: int = Field(
        default=5,
        ge=1,
        description="failed sign-ins of one login (name or email) from one client before "
        "that client's further tries on it get 429 until the window ends",
    )
    signin_client_max_failures: int = Field(
        default=50,
        ge=1,
        description="failed sign-ins from one client, whatever the login, before its further "
        "tries get 429 until the window ends",
    )
    signin_window_seconds: int = Field(
        default=900,
        ge=1,
        description="seconds failed sign-ins are counted, from the first failure",
    )
