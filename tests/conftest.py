"""Shared test configuration.

Deliberately light: no autouse database fixtures, so the pure engine tests in tests/matching never touch a
database. Tests that need one ask for it with `@pytest.mark.django_db`; pytest-django creates the test
database on the configured (or embedded) PostgreSQL server.
"""
import pytest


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's test database, and the web's listener stopped before it is dropped (its connection
    would keep the database from being dropped)."""
    yield
    from exchange.listener import listener
    listener.stop()


@pytest.fixture(autouse=True)
def empty_web_caches():
    """Each test starts with empty web caches and no published market data, process metrics or read marks: a test's
    rolled-back rows announce no change, so a pair or a depth cached by one test (or a book or metrics an
    earlier test's worker published) could otherwise outlive it."""
    from exchange.api.authentication import tokens
    from exchange.market.published import depth_answers, store
    from exchange.trading.pairs import pairs_cache
    from exchange.workers import worker_liveness
    for cache in (tokens, pairs_cache, depth_answers):
        cache.clear()
    worker_liveness.forget()
    published = [key for pattern in ("md:*", "metrics:process:*", "audit:read:*")
                 for key in store().scan_iter(pattern, count=1000)]
    if published:
        store().delete(*published)


@pytest.fixture(autouse=True)
def generous_rate_limits(settings):
    """The API's rate limits out of the way, but for the tests of the limits themselves (which set their own):
    a test's client calls from one address, faster than any trader."""
    settings.API_RATE_USER = settings.API_RATE_ANONYMOUS = "1000000/s"
