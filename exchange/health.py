"""Readiness checks of the services the exchange cannot work without."""

import redis
from django.conf import settings
from django.db import connection

CHECK_TIMEOUT_SECONDS = 2


def check_database() -> str:
    """`ok` when the default database answers a query, else the error."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"; the message is reported
        return f"error: {error}"
    return "ok"


def check_redis() -> str:
    """`ok` when Redis answers PING, else the error."""
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except redis.RedisError as error:
        return f"error: {error}"
    finally:
        client.close()
    return "ok"


def health_report() -> tuple[bool, dict]:
    """Run every check; healthy only when all say `ok`."""
    checks = {"database": check_database(), "redis": check_redis()}
    healthy = all(result == "ok" for result in checks.values())
    return healthy, {"status": "ok" if healthy else "unavailable", "checks": checks}
