"""The one place a process makes its Redis clients, all of `REDIS_URL`.

Each use says how long it may wait for Redis (`timeout`, for connecting and for an answer: None waits as long
as it takes) and whether it reads text (`decode_responses`). `shared_redis` is the process's one client of a
kind, its pool shared by every thread (redis-py makes a new pool in a forked child); `redis_client` is a new
one, for a use that closes it or keeps it to itself.
"""
from __future__ import annotations

from functools import cache

import redis
import redis.asyncio
from django.conf import settings

DEFAULT_TIMEOUT_SECONDS = 2.0


def redis_client(*, decode_responses: bool = False, timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> redis.Redis:
    """A new client of its own."""
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=decode_responses, socket_timeout=timeout,
                                socket_connect_timeout=timeout)


@cache
def shared_redis(*, decode_responses: bool = False, timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> redis.Redis:
    """The process's one client of this kind."""
    return redis_client(decode_responses=decode_responses, timeout=timeout)


@cache
def shared_async_redis(*, decode_responses: bool = True) -> redis.asyncio.Redis:
    """The process's one asyncio client, for the websocket server's one event loop; it waits as long as Redis
    takes (a stream's reads are few and its sends are bounded elsewhere)."""
    return redis.asyncio.Redis.from_url(settings.REDIS_URL, decode_responses=decode_responses)
