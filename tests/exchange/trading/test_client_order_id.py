"""Idempotent placement: an order carries the client's own id, unique among its owner's orders, so a retried
placement (a lost answer, a restart) finds the order placed the first time instead of placing a second one;
an order can be read and cancelled by that id."""
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from exchange.models import Order

ORDER = {"pair": "BTCUSDT", "side": "buy", "price": "50000.01", "quantity": "0.5"}


def with_id(client_order_id: str, **changes) -> dict:
    return {**ORDER, "client_order_id": client_order_id, **changes}


@pytest.mark.django_db
def test_a_retried_placement_answers_the_first_order_and_places_nothing_more(api, btc):
    first = api.post("/api/orders/", with_id("retry-1"), format="json")

    again = api.post("/api/orders/", with_id("retry-1"), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_each_user_has_their_own_client_order_ids(api, other_api, btc):
    mine = api.post("/api/orders/", with_id("shared-id"), format="json")
    theirs = other_api.post("/api/orders/", with_id("shared-id"), format="json")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.django_db
def test_a_retried_batch_answers_the_first_orders_and_a_partly_new_one_places_only_the_new(api, btc):
    batch = {"orders": [with_id("b-1"), with_id("b-2", side="sell", price="51000")]}
    first = api.post("/api/orders/batch/", batch, format="json")
    again = api.post("/api/orders/batch/", batch, format="json")
    mixed = api.post("/api/orders/batch/", {"orders": [with_id("b-2"), with_id("b-3")]}, format="json")

    assert (first.status_code, again.status_code, mixed.status_code) == (201, 200, 201)
    assert again.json() == first.json()
    assert [order["client_order_id"] for order in mixed.json()] == ["b-2", "b-3"]
    assert mixed.json()[0] == first.json()[1]
    assert sorted(Order.objects.values_list("client_order_id", flat=True)) == ["b-1", "b-2", "b-3"]


@pytest.mark.django_db
def test_a_batch_that_uses_one_client_order_id_twice_places_nothing(api, btc):
    response = api.post("/api/orders/batch/", {"orders": [with_id("twice"), with_id("twice")]}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_batch")
    assert "orders[1].client_order_id" in response.json()["error"]["fields"]
    assert not Order.objects.exists()


@pytest.mark.parametrize("client_order_id", ["", " padded", "a" * 37, "ordre-é", "with/slash", 42])
@pytest.mark.django_db
def test_a_client_order_id_outside_its_alphabet_is_refused(api, btc, client_order_id):
    response = api.post("/api/orders/", {**ORDER, "client_order_id": client_order_id}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")
    assert "client_order_id" in response.json()["error"]["fields"]
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_an_order_is_read_and_cancelled_by_its_client_order_id(api, other_api, btc):
    placed = api.post("/api/orders/", with_id("to-cancel"), format="json").json()

    read = api.get("/api/orders/by-client-id/to-cancel/")
    not_theirs = other_api.post("/api/orders/by-client-id/to-cancel/cancel/")
    cancelled = api.post("/api/orders/by-client-id/to-cancel/cancel/")
    unknown = api.post("/api/orders/by-client-id/never-used/cancel/")

    assert read.json() == placed
    assert (not_theirs.status_code, not_theirs.json()["error"]["code"]) == (404, "order_not_found")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "order_not_found")


@pytest.mark.django_db(transaction=True)
def test_retries_racing_each_other_place_one_order(user, btc):
    answers = []

    def place() -> None:
        client = APIClient()
        client.force_authenticate(user)
        try:
            answers.append(client.post("/api/orders/", with_id("race"), format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=place) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) == [200] * 5 + [201]
    assert Order.objects.filter(client_order_id="race").count() == 1
