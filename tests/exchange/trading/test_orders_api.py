"""The order endpoints: placing commits a pending order and notifies the worker, each user sees only their
own orders, cancel and reduce take the direct or the queued path, and `?wait=` sleeps on the results channel.

Tests that need a NOTIFY delivered, or a second connection to see a commit, use `transactional_db`: inside
the `db` fixture's transaction nothing commits, so nothing is ever notified.
"""

import select
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from exchange.inbox import announce_results
from exchange.models import AuditLog, Order, OrderRequest
from exchange.trading.orders import INBOX_CHANNEL, MAX_BATCH_SIZE
from tests.exchange.factories import make_live_worker, make_order, make_resting_order

BUY_HALF_A_BITCOIN = {"pair": "BTCUSDT", "side": "buy", "price": "50000.01", "quantity": "0.5"}


@pytest.fixture
def listener():
    """A second, autocommit connection to the test database that can LISTEN."""
    raw = connection.get_new_connection(connection.get_connection_params())
    raw.autocommit = True
    yield raw
    raw.close()


def listen(raw, channel: str) -> None:
    with raw.cursor() as cursor:
        cursor.execute(f'LISTEN "{channel}"')


def received(raw, timeout: float = 1.0) -> list[tuple[str, str]]:
    """The (channel, payload) of the notifications that arrive within `timeout`."""
    if select.select([raw], [], [], timeout)[0]:
        raw.poll()
    return sorted((notify.channel, notify.payload) for notify in raw.notifies)


@pytest.mark.django_db(transaction=True)
def test_placing_an_order_commits_it_pending_and_notifies_its_shard(api, user, btc, listener):
    listen(listener, INBOX_CHANNEL)

    response = api.post("/api/orders/", BUY_HALF_A_BITCOIN, format="json")

    assert response.status_code == 201
    order = Order.objects.get(id=response.json()["id"])
    assert (order.owner, order.pair, order.status, order.price, order.quantity) == (
        user, btc, Order.Status.PENDING, Decimal("50000.01"), Decimal("0.5"))
    assert order.inbox_sequence > 0
    assert received(listener) == [(INBOX_CHANNEL, str(btc.shard))]


@pytest.mark.django_db
def test_an_order_is_shown_with_normalized_decimals_and_its_defaults(api, btc):
    response = api.post("/api/orders/", {**BUY_HALF_A_BITCOIN, "pair": "btcusdt", "quantity": "0.50000"},
                        format="json")

    body = response.json()
    assert {key: value for key, value in body.items() if key not in ("id", "created_at", "updated_at")} == {
        "client_order_id": None, "pair": "BTCUSDT", "side": "buy", "type": "limit", "time_in_force": "gtc",
        "self_trade": "expire_taker",
        "price": "50000.01", "quantity": "0.5", "filled_quantity": "0", "remaining_quantity": "0.5",
        "average_fill_price": None, "status": "pending", "reason": "",
    }
    assert api.get(f"/api/orders/{body['id']}/").json() == body


@pytest.mark.django_db
def test_a_market_order_is_placed_without_a_price(api, pairs):
    response = api.post("/api/orders/", {"pair": "ETHUSDT", "side": "sell", "type": "market", "quantity": "2",
                                         "time_in_force": "ioc", "self_trade": "expire_both"}, format="json")

    assert response.status_code == 201
    order = Order.objects.get(id=response.json()["id"])
    assert (order.order_type, order.price, order.time_in_force, order.self_trade) == ("market", None, "ioc",
                                                                                      "expire_both")


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_one_insert_in_order_with_one_notify_per_shard(api, pairs, listener):
    pairs["ETHUSDT"].shard = 1
    pairs["ETHUSDT"].save()
    make_live_worker(1)
    listen(listener, INBOX_CHANNEL)
    batch = [BUY_HALF_A_BITCOIN, {**BUY_HALF_A_BITCOIN, "pair": "ETHUSDT", "price": "3000"},
             {**BUY_HALF_A_BITCOIN, "side": "sell", "price": "51000"}]

    response = api.post("/api/orders/batch/", {"orders": batch}, format="json")

    assert response.status_code == 201
    placed = response.json()
    assert [(order["pair"], order["price"]) for order in placed] == [
        ("BTCUSDT", "50000.01"), ("ETHUSDT", "3000"), ("BTCUSDT", "51000")]
    sequences = [Order.objects.get(id=order["id"]).inbox_sequence for order in placed]
    assert sequences == sorted(sequences)
    time.sleep(0.05)  # both notifies of the one commit arrive together; give the second one time to be read
    assert received(listener) == [(INBOX_CHANNEL, "0"), (INBOX_CHANNEL, "1")]


@pytest.mark.django_db
def test_a_batch_of_the_largest_size_is_placed_whole(api, pairs):
    response = api.post("/api/orders/batch/", {"orders": [BUY_HALF_A_BITCOIN] * MAX_BATCH_SIZE}, format="json")

    assert response.status_code == 201, response.content
    assert len(response.json()) == MAX_BATCH_SIZE == 100
    assert Order.objects.filter(status="pending").count() == MAX_BATCH_SIZE


def test_a_batch_with_one_bad_order_places_none_and_names_it(api, pairs):
    batch = [BUY_HALF_A_BITCOIN, {**BUY_HALF_A_BITCOIN, "quantity": "0.000001"}, {**BUY_HALF_A_BITCOIN,
                                                                                    "price": "0.01"}]

    response = api.post("/api/orders/batch/", {"orders": batch}, format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"orders[1].quantity", "orders[2]"}
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_another_users_order_is_not_found(api, other_user, btc):
    bobs = make_order(other_user, btc)

    response = api.get(f"/api/orders/{bobs.id}/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "order_not_found"


@pytest.mark.django_db
def test_the_list_shows_only_my_orders_newest_first(api, user, other_user, btc):
    mine = [make_order(user, btc).id for _ in range(3)]
    make_order(other_user, btc)

    response = api.get("/api/orders/")

    assert response.json()["count"] == 3
    assert [order["id"] for order in response.json()["results"]] == mine[::-1]


@pytest.mark.django_db
def test_the_list_is_paginated_by_page_size(api, user, btc):
    ids = [make_order(user, btc).id for _ in range(7)][::-1]

    first = api.get("/api/orders/?page_size=3").json()
    last = api.get("/api/orders/?page_size=3&page=3").json()

    assert (first["count"], [order["id"] for order in first["results"]]) == (7, ids[:3])
    assert first["next"].endswith("page=2&page_size=3")
    assert ([order["id"] for order in last["results"]], last["next"]) == (ids[6:], None)


@pytest.mark.django_db
def test_the_page_size_is_capped(api, user, btc):
    for _ in range(3):
        make_order(user, btc)

    response = api.get("/api/orders/?page_size=100000")

    assert len(response.json()["results"]) == 3


@pytest.mark.django_db
def test_the_list_filters_by_pair_and_status(api, user, pairs):
    btc, eth = pairs["BTCUSDT"], pairs["ETHUSDT"]
    make_order(user, btc)
    open_btc = make_resting_order(user, btc)
    make_resting_order(user, eth, price="3000")

    by_pair = api.get("/api/orders/?pair=ethusdt").json()["results"]
    by_both = api.get("/api/orders/?pair=BTCUSDT&status=open").json()["results"]

    assert [order["pair"] for order in by_pair] == ["ETHUSDT"]
    assert [order["id"] for order in by_both] == [open_btc.id]


@pytest.mark.django_db
def test_an_unknown_status_filter_is_a_bad_request(api):
    response = api.get("/api/orders/?status=sleeping")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"status": '"sleeping" is not a valid choice.'}


@pytest.mark.django_db
def test_cancelling_a_pending_order_cancels_it_directly(api, user, btc):
    order = make_order(user, btc)

    response = api.post(f"/api/orders/{order.id}/cancel/")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["reason"]) == ("cancelled", "user")
    order.refresh_from_db()
    assert (order.status, order.reason) == (Order.Status.CANCELLED, "user")
    assert not OrderRequest.objects.exists()
    assert AuditLog.objects.get().action == "order_cancelled"


@pytest.mark.django_db(transaction=True)
def test_cancelling_an_open_order_queues_one_request_for_the_worker(api, user, btc, listener):
    order = make_resting_order(user, btc, quantity="1", filled="0.25")
    listen(listener, INBOX_CHANNEL)

    first = api.post(f"/api/orders/{order.id}/cancel/")
    second = api.post(f"/api/orders/{order.id}/cancel/")

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["status"] == "partially_filled"
    request = OrderRequest.objects.get()
    assert (request.order_id, request.kind, request.status) == (order.id, "cancel", "pending")
    assert received(listener) == [(INBOX_CHANNEL, str(btc.shard))]


@pytest.mark.django_db
def test_reducing_an_open_order_queues_a_request_with_the_new_remaining_quantity(api, user, btc):
    order = make_resting_order(user, btc, quantity="1", filled="0.4")

    response = api.post(f"/api/orders/{order.id}/reduce/", {"quantity": "0.25"}, format="json")

    assert response.status_code == 202
    request = OrderRequest.objects.get()
    assert (request.kind, request.quantity, request.status) == ("reduce", Decimal("0.25"), "pending")
    order.refresh_from_db()
    assert order.quantity == Decimal("1")


@pytest.mark.django_db
def test_reducing_a_pending_order_changes_its_quantity_directly(api, user, btc):
    order = make_order(user, btc, quantity="1")

    response = api.post(f"/api/orders/{order.id}/reduce/", {"quantity": "0.3"}, format="json")

    assert response.status_code == 200
    assert (response.json()["quantity"], response.json()["status"]) == ("0.3", "pending")
    order.refresh_from_db()
    assert order.quantity == Decimal("0.3")
    assert not OrderRequest.objects.exists()


@pytest.mark.django_db
def test_reducing_a_pending_order_to_zero_cancels_it(api, user, btc):
    order = make_order(user, btc)

    response = api.post(f"/api/orders/{order.id}/reduce/", {"quantity": "0"}, format="json")

    assert response.status_code == 200
    order.refresh_from_db()
    assert (order.status, order.reason) == (Order.Status.CANCELLED, "user")


@pytest.mark.django_db
def test_a_session_user_can_place_an_order(client, user, btc):
    client.force_login(user)

    response = client.post("/api/orders/", BUY_HALF_A_BITCOIN, content_type="application/json")

    assert response.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_waiting_without_a_worker_answers_the_pending_order_after_the_wait(api, btc):
    started = time.monotonic()

    response = api.post("/api/orders/?wait=50", BUY_HALF_A_BITCOIN, format="json")

    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    assert 0.05 <= elapsed < 1.0


@pytest.mark.django_db(transaction=True)
def test_waiting_wakes_up_when_the_worker_notifies_a_result(api, btc):
    def worker_opens_the_order():
        time.sleep(0.2)
        try:
            while not Order.objects.exists():
                time.sleep(0.01)
            Order.objects.update(status=Order.Status.OPEN, priority_sequence=1)
            announce_results(btc.id)
        finally:
            connection.close()

    worker = threading.Thread(target=worker_opens_the_order)
    worker.start()
    started = time.monotonic()

    response = api.post("/api/orders/?wait=5000", BUY_HALF_A_BITCOIN, format="json")

    elapsed = time.monotonic() - started
    worker.join()
    assert response.json()["status"] == "open"
    assert 0.2 <= elapsed < 2.0


@pytest.mark.django_db(transaction=True)
def test_waiting_on_a_batch_leaves_no_listener_behind(api, btc):
    response = api.post("/api/orders/batch/?wait=20", {"orders": [BUY_HALF_A_BITCOIN] * 2}, format="json")

    assert [order["status"] for order in response.json()] == ["pending", "pending"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_listening_channels()")
        assert cursor.fetchone()[0] == 0


def test_the_remaining_quantity_is_exact_to_the_columns_38_digits():
    order = Order(quantity=Decimal("12345678901234567890.123456789012345678"),
                  filled_quantity=Decimal("0.000000000000000001"))
    assert order.remaining_quantity == Decimal("12345678901234567890.123456789012345677")
