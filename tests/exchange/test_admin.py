"""The back-office screens of orders, requests, trades, the audit log, engine states and heartbeats: each
lists and filters, none can add, change or delete."""

import pytest
from django.contrib.auth.models import User

from exchange.models import Order
from tests.exchange.factories import make_order, make_resting_order, make_trade

READ_ONLY_MODELS = ["order", "orderrequest", "trade", "auditlog", "enginestate", "workerheartbeat"]


@pytest.fixture
def operator_client(client, db):
    client.force_login(User.objects.create_superuser("operator", "operator@example.com", None))
    return client


@pytest.fixture
def trading(user, btc):
    maker = make_resting_order(user, btc, side="sell", price="100", quantity="1")
    taker = make_order(user, btc, side="buy", price="100", quantity="1", filled="1", status=Order.Status.FILLED)
    make_trade(btc, 1, "100", "1", maker=maker, taker=taker)


@pytest.mark.django_db
@pytest.mark.parametrize("model", READ_ONLY_MODELS)
def test_the_screen_lists_rows(operator_client, trading, model):
    response = operator_client.get(f"/backoffice/exchange/{model}/")

    assert response.status_code == 200


@pytest.mark.django_db
def test_orders_filter_by_pair_and_status(operator_client, trading, btc):
    response = operator_client.get(f"/backoffice/exchange/order/?pair__id__exact={btc.id}&status__exact=filled")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


@pytest.mark.django_db
@pytest.mark.parametrize("model", READ_ONLY_MODELS)
def test_nothing_can_be_added_by_hand(operator_client, model):
    response = operator_client.get(f"/backoffice/exchange/{model}/add/")

    assert response.status_code == 403
