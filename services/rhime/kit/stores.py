"""Clients for MongoDB and Redis, with the timeouts every outbound call needs: a stalled
server makes a call fail within the configured time instead of hanging the request or the
handler (and "fail open" on Redis then really is quick)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from motor.motor_asyncio import AsyncIOMotorClient
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from rhime.kit.settings import Settings


def mongo(settings: Settings, *, appname: str) -> Any:
    """A motor client; an operation waiting on a silent server fails after the socket timeout."""
    return AsyncIOMotorClient(
        settings.mongo_url,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        socketTimeoutMS=int(settings.mongo_timeout_seconds * 1000),
        tz_aware=True,
        appname=appname,
    )


def redis(settings: Settings) -> aioredis.Redis:
    """redis.asyncio with short socket timeouts and one quick retry (redis-py's default is a
    5 s timeout retried 10 times: close to a minute before a caller learns Redis is gone)."""
    return aioredis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=settings.redis_retries),
        health_check_interval=30,
    )
