"""Schemathesis against the published OpenAPI schema (`/api/schema/`): every operation, called with generated
requests as a trader and as staff, never answers 5xx and always answers what its schema says.

Every check of schemathesis runs but one: `positive_data_acceptance` takes a request that fits the schema for
one the API must accept, and the schema cannot say that a pair must exist or that a percentage must not pass
the pair's configured maximum (those are 400s with their own codes)."""
import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import positive_data_acceptance

from exchange.trading.pairs import ensure_demo_pairs
from exchange.wsgi import application
from tests.exchange.factories import make_live_worker

# Loaded at collection: generating the schema needs no database. (schemathesis' `from_fixture` does not run
# under pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
# Derandomized: CI sends the same requests every run, so a red run is never a roll of the dice. (Eight random
# runs before this setting found nothing more.)
CONTRACT_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                             derandomize=True)


@pytest.fixture(autouse=True)
def market(db):
    """The demo pairs, and requests served in the test's transaction. Like Django's test client, the fixture
    keeps requests from closing the connection: a connection inside a transaction looks obsolete."""
    ensure_demo_pairs()
    make_live_worker(0)
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def token_of(user: User) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def trader_headers(db) -> dict:
    return {"Authorization": f"Token {token_of(User.objects.create_user('trader'))}"}


@pytest.fixture
def staff_headers(db) -> dict:
    return {"Authorization": f"Token {token_of(User.objects.create_user('operator', is_staff=True))}"}


@schema.parametrize()
@CONTRACT_SETTINGS
def test_every_operation_keeps_its_contract_for_a_trader(case, trader_headers):
    case.call_and_validate(headers=trader_headers, excluded_checks=[positive_data_acceptance])


@schema.parametrize()
@CONTRACT_SETTINGS
def test_every_operation_keeps_its_contract_for_staff(case, staff_headers):
    case.call_and_validate(headers=staff_headers, excluded_checks=[positive_data_acceptance])
