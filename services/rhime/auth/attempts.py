"""Sign-in attempts, limited per (account, client) and per client.

Per (account, client), so that failures from one client never lock the account for another
(usernames are public: anyone could otherwise keep anyone locked out); per client, so that one
client cannot try a few passwords on every account.

An attempt is reserved before the password is checked: an atomic increment that also refuses
past the limit, so a burst of parallel guesses gets no more checks than the limit allows. A
success clears the (account, client) count and gives the client its attempt back; an attempt
that was never checked (hashing busy) gives both back. Each key lives in one Redis slot (Redis
Cluster friendly); the window runs from the first attempt.
"""

from __future__ import annotations

import dataclasses
import hashlib

from rhime.kit import errors
from rhime.kit.kit import Kit

# INCR, and start the window on the first attempt (NX: also repairs a key without one).
_RESERVE = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return {n, redis.call('TTL', KEYS[1])}
"""
# DECR only what is still counted: never resurrect an expired key without a window.
_REFUND = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    per_account: int  # per (account, client)
    per_client: int
    window_seconds: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reservation:
    account_key: str
    client_key: str


async def reserve(kit: Kit, *, login: str, client: str, limits: Limits) -> Reservation:
    """Count this attempt as failed until it succeeds; 429 when either limit is reached."""
    # The login is hashed: bounded key size, and no ambiguity between login and client parts.
    digest = hashlib.sha256(login.encode()).hexdigest()[:32]
    reservation = Reservation(
        account_key=kit.key("signin-attempts", digest, client),
        client_key=kit.key("signin-attempts-client", client),
    )
    window = str(limits.window_seconds)
    async with kit.redis.pipeline(transaction=False) as pipe:
        pipe.eval(_RESERVE, 1, reservation.account_key, window)
        pipe.eval(_RESERVE, 1, reservation.client_key, window)
        (account, account_ttl), (per_client, client_ttl) = await pipe.execute()
    waits = [
        int(ttl)
        for count, limit, ttl in (
            (account, limits.per_account, account_ttl),
            (per_client, limits.per_client, client_ttl),
        )
        if int(count) > limit
    ]
    if waits:
        raise errors.ApiError(
            429,
            "Too many failed sign-ins; try again later.",
            headers={"Retry-After": str(max(max(waits), 1))},
        )
    return reservation


async def succeeded(kit: Kit, reservation: Reservation) -> None:
    async with kit.redis.pipeline(transaction=False) as pipe:
        pipe.delete(reservation.account_key)
        pipe.eval(_REFUND, 1, reservation.client_key)
        await pipe.execute()


async def unchecked(kit: Kit, reservation: Reservation) -> None:
    """The password was never checked: the attempt does not count."""
    async with kit.redis.pipeline(transaction=False) as pipe:
        pipe.eval(_REFUND, 1, reservation.account_key)
        pipe.eval(_REFUND, 1, reservation.client_key)
        await pipe.execute()
