"""Fixtures of the exchange tests: the demo pairs, two users and token-authenticated API clients."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from exchange.models import TradingPair
from exchange.trading.pairs import ensure_demo_pairs
from tests.exchange.factories import make_live_worker, make_user


@pytest.fixture
def pairs(db) -> dict[str, TradingPair]:
    """The demo pairs by symbol: BTCUSDT (tick 0.01, lot 0.00001, min notional 10), ETHUSDT, ADAUSDT, DOTUSDT,
    and their shard's worker serving."""
    make_live_worker(0)
    return {pair.symbol: pair for pair in ensure_demo_pairs()}


@pytest.fixture
def btc(pairs) -> TradingPair:
    return pairs["BTCUSDT"]


@pytest.fixture
def user(db):
    return make_user("alice")


@pytest.fixture
def other_user(db):
    return make_user("bob")


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    """Alice's API client, authenticated with her token."""
    return token_client(user)


@pytest.fixture
def other_api(other_user) -> APIClient:
    """Bob's API client."""
    return token_client(other_user)


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()
