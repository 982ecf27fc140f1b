"""Rate limits of the API, per user (or per address for anonymous callers), shared by every web process.

A fixed window counted in Redis: one pipelined INCR and EXPIRE per request. DRF's own throttles keep the time
of every request of the window in the cache and rewrite that whole list on each request: at the rates a
trading client sends, hundreds of timestamps read and written per order.
"""
import logging
import time

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from exchange.stores import shared_redis

log = logging.getLogger(__name__)
PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(rate: str) -> tuple[int, int]:
    """`100/s`, `6000/min`, `1000/hour` → (requests, seconds)."""
    count, _, period = rate.partition("/")
    if not count.isdigit() or period not in PERIODS:
        raise ValueError(f"{rate!r} is not a rate like 100/s, 6000/min or 1000/hour")
    return int(count), PERIODS[period]


class WindowRateThrottle(BaseThrottle):
    """At most `limit` requests per `window` seconds for each caller: API_RATE_USER for an authenticated user,
    API_RATE_ANONYMOUS for an anonymous address. If Redis cannot be reached the request is let through (and
    the failure is logged): the limit protects the exchange, it must not stop it."""

    def allow_request(self, request: Request, view: object) -> bool:
        user = request.user
        if user is not None and user.is_authenticated:
            key, rate = f"throttle:user:{user.pk}", settings.API_RATE_USER
        else:
            key, rate = f"throttle:address:{self.get_ident(request)}", settings.API_RATE_ANONYMOUS
        limit, window = parse_rate(rate)
        now = time.time()
        started = int(now // window * window)
        self.retry_in = started + window - now
        try:
            pipeline = shared_redis(timeout=1).pipeline(transaction=False)
            pipeline.incr(f"{key}:{started}")
            pipeline.expire(f"{key}:{started}", window + 1)
            count, _ = pipeline.execute()
        except redis.RedisError as error:
            log.warning("rate limits not counted: Redis does not answer", extra={
                "event": "throttle_unavailable", "error": str(error)})
            return True
        return count <= limit

    def wait(self) -> float:
        return self.retry_in
