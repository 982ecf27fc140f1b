"""Fixtures of the control-plane tests: the demo pairs, a staff API client (token), a non-staff one, and
factories for the worker's engine states and health samples."""

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from exchange.models import EngineState, HealthSample, TradingPair
from exchange.trading.pairs import ensure_demo_pairs

NOW = datetime.fromisoformat("2026-01-15T12:30:20+00:00")


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def pairs(db) -> dict[str, TradingPair]:
    return {pair.symbol: pair for pair in ensure_demo_pairs()}


@pytest.fixture
def btc(pairs) -> TradingPair:
    return pairs["BTCUSDT"]


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("ops", is_staff=True)


@pytest.fixture
def staff_api(staff) -> APIClient:
    return token_client(staff)


@pytest.fixture
def trader_api(db) -> APIClient:
    return token_client(User.objects.create_user("trader"))


def set_engine(pair: TradingPair, mode: str = "migrating", percentage: int = 0, **fields) -> EngineState:
    """The pair's engine as the worker would have committed it after applying the plan's commands."""
    engine, _ = EngineState.objects.update_or_create(pair=pair, defaults={"mode": mode, "percentage": percentage,
                                                                          **fields})
    return engine


def add_minutes(pair: TradingPair, now: datetime, count: int, book: str = "adaptive", **fields) -> None:
    """`count` per-minute samples ending with the current minute of `now`, each with `fields`."""
    current = now.replace(second=0, microsecond=0)
    for back in range(count):
        values = {"commands": 1000, "errors": 0, "latency_p95_us": 40.0, **fields}
        HealthSample.objects.update_or_create(pair=pair, book=book, minute=current - timedelta(minutes=back),
                                              defaults=values)
