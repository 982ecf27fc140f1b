"""Every bad request about orders gets a clear 4xx with a stable error code, and writes nothing."""

import json
from decimal import Decimal

import pytest

from exchange.models import AuditLog, Order, OrderRequest, Trade, TradingPair
from tests.exchange.factories import make_order, make_resting_order

PLACE = "/api/orders/"
BATCH = "/api/orders/batch/"
GOOD = {"pair": "BTCUSDT", "side": "buy", "price": "50000.01", "quantity": "0.5"}


def order(**changes) -> dict:
    """The good order with `changes`; a change to None removes the field."""
    return {key: value for key, value in {**GOOD, **changes}.items() if value is not None}


# (id, method, path, body, status, code, field that must be named in "fields" or None)
# `body` is a dict (sent as JSON) or a str (sent as it is); paths may name the orders of the `orders` fixture.
CASES = [
    ("unknown-pair", "post", PLACE, order(pair="DOGEUSDT"), 400, "unknown_pair", "pair"),
    ("halted-pair", "post", PLACE, order(pair="XRPUSDT", price="0.5", quantity="100"), 409, "pair_halted", "pair"),
    ("price-off-tick-grid", "post", PLACE, order(price="50000.001"), 400, "price_off_grid", "price"),
    ("quantity-off-lot-grid", "post", PLACE, order(quantity="0.500001"), 400, "quantity_off_grid", "quantity"),
    ("zero-quantity", "post", PLACE, order(quantity="0"), 400, "invalid_request", "quantity"),
    ("negative-quantity", "post", PLACE, order(quantity="-0.5"), 400, "invalid_request", "quantity"),
    ("zero-price", "post", PLACE, order(price="0"), 400, "invalid_request", "price"),
    ("negative-price", "post", PLACE, order(price="-50000"), 400, "invalid_request", "price"),
    ("nan-quantity", "post", PLACE, order(quantity="NaN"), 400, "invalid_request", "quantity"),
    ("infinite-price", "post", PLACE, order(price="Infinity"), 400, "invalid_request", "price"),
    ("nan-json-literal", "post", PLACE, '{"pair": "BTCUSDT", "side": "buy", "price": NaN, "quantity": 1}',
     400, "malformed_body", None),
    ("huge-json-number", "post", PLACE, '{"pair": "BTCUSDT", "side": "buy", "price": 1e400, "quantity": 1}',
     400, "invalid_request", "price"),
    ("21-integer-digits", "post", PLACE, order(price="1" + "0" * 20), 400, "invalid_request", "price"),
    ("19-decimals", "post", PLACE, order(quantity="0.5000000000000000001"), 400, "invalid_request", "quantity"),
    ("not-a-number", "post", PLACE, order(quantity="half"), 400, "invalid_request", "quantity"),
    ("full-width-digits", "post", PLACE, order(quantity="０.５"), 400, "invalid_request", "quantity"),
    ("arabic-indic-digits", "post", PLACE, order(price="٥٠٠٠٠"), 400, "invalid_request", "price"),
    ("padded-amount", "post", PLACE, order(quantity=" 0.5"), 400, "invalid_request", "quantity"),
    ("amount-with-trailing-space", "post", PLACE, order(price="50000.01 "), 400, "invalid_request", "price"),
    ("amount-with-exponent", "post", PLACE, order(quantity="5e-1"), 400, "invalid_request", "quantity"),
    ("amount-with-plus-sign", "post", PLACE, order(quantity="+0.5"), 400, "invalid_request", "quantity"),
    ("reduce-to-full-width-zero", "post", "/api/orders/{open}/reduce/", {"quantity": "０"},
     400, "invalid_request", "quantity"),
    ("below-min-notional", "post", PLACE, order(price="100", quantity="0.01"), 400, "below_min_notional", None),
    ("unknown-type", "post", PLACE, order(type="stop"), 400, "invalid_request", "type"),
    ("unknown-time-in-force", "post", PLACE, order(time_in_force="gtd"), 400, "invalid_request", "time_in_force"),
    ("unknown-self-trade", "post", PLACE, order(self_trade="block"), 400, "invalid_request", "self_trade"),
    ("unknown-side", "post", PLACE, order(side="long"), 400, "invalid_request", "side"),
    ("missing-side", "post", PLACE, order(side=None), 400, "invalid_request", "side"),
    ("missing-quantity", "post", PLACE, order(quantity=None), 400, "invalid_request", "quantity"),
    ("missing-pair", "post", PLACE, order(pair=None), 400, "invalid_request", "pair"),
    ("limit-without-price", "post", PLACE, order(price=None), 400, "invalid_request", "price"),
    ("market-with-price", "post", PLACE, order(type="market"), 400, "invalid_request", "price"),
    ("unknown-field", "post", PLACE, order(leverage="10"), 400, "invalid_request", "leverage"),
    ("malformed-json", "post", PLACE, '{"pair": "BTCUSDT", ', 400, "malformed_body", None),
    ("array-body", "post", PLACE, "[1, 2]", 400, "invalid_request", None),
    ("string-body", "post", PLACE, '"buy"', 400, "invalid_request", None),
    ("empty-body", "post", PLACE, "", 400, "invalid_request", "pair"),
    ("form-encoded-body", "post-form", PLACE, GOOD, 415, "unsupported_media_type", None),
    ("wait-too-long", "post", PLACE + "?wait=10001", GOOD, 400, "invalid_request", "wait"),
    ("wait-negative", "post", PLACE + "?wait=-1", GOOD, 400, "invalid_request", "wait"),
    ("not-authenticated", "post-anonymous", PLACE, GOOD, 401, "not_authenticated", None),
    ("empty-batch", "post", BATCH, {"orders": []}, 400, "invalid_request", "orders"),
    ("batch-of-101", "post", BATCH, {"orders": [GOOD] * 101}, 400, "invalid_request", "orders"),
    ("batch-without-orders", "post", BATCH, {}, 400, "invalid_request", "orders"),
    ("batch-not-a-list", "post", BATCH, {"orders": GOOD}, 400, "invalid_request", "orders"),
    ("batch-unknown-field", "post", BATCH, {"orders": [GOOD], "atomic": False}, 400, "invalid_request", "atomic"),
    ("batch-with-a-shapeless-order", "post", BATCH, {"orders": [GOOD, GOOD, order(quantity="-1")]},
     400, "invalid_request", "orders[2].quantity"),
    ("batch-with-an-off-grid-order", "post", BATCH, {"orders": [GOOD, order(price="1.001"), GOOD]},
     400, "invalid_batch", "orders[1].price"),
    ("batch-with-an-unknown-pair", "post", BATCH, {"orders": [order(pair="DOGEUSDT"), GOOD]},
     400, "invalid_batch", "orders[0].pair"),
    ("cancel-someone-elses-order", "post", "/api/orders/{bobs}/cancel/", None, 404, "order_not_found", None),
    ("cancel-a-missing-order", "post", "/api/orders/999999999/cancel/", None, 404, "order_not_found", None),
    ("cancel-a-filled-order", "post", "/api/orders/{filled}/cancel/", None, 409, "order_finished", None),
    ("cancel-a-cancelled-order", "post", "/api/orders/{cancelled}/cancel/", None, 409, "order_finished", None),
    ("reduce-someone-elses-order", "post", "/api/orders/{bobs}/reduce/", {"quantity": "0.1"},
     404, "order_not_found", None),
    ("reduce-a-filled-order", "post", "/api/orders/{filled}/reduce/", {"quantity": "0.1"},
     409, "order_finished", None),
    ("reduce-off-lot-grid", "post", "/api/orders/{open}/reduce/", {"quantity": "0.100001"},
     400, "quantity_off_grid", "quantity"),
    ("reduce-to-the-remaining-quantity", "post", "/api/orders/{open}/reduce/", {"quantity": "0.6"},
     400, "quantity_not_reduced", "quantity"),
    ("reduce-above-the-remaining-quantity", "post", "/api/orders/{open}/reduce/", {"quantity": "0.9"},
     400, "quantity_not_reduced", "quantity"),
    ("reduce-to-a-negative-quantity", "post", "/api/orders/{open}/reduce/", {"quantity": "-0.1"},
     400, "invalid_request", "quantity"),
    ("reduce-without-quantity", "post", "/api/orders/{open}/reduce/", {}, 400, "invalid_request", "quantity"),
    ("reduce-nan", "post", "/api/orders/{open}/reduce/", {"quantity": "NaN"}, 400, "invalid_request", "quantity"),
    ("reduce-unknown-field", "post", "/api/orders/{open}/reduce/", {"quantity": "0.1", "price": "1"},
     400, "invalid_request", "price"),
]


@pytest.fixture
def orders(pairs, user, other_user) -> dict[str, int]:
    """Alice's open (0.4 of 1 filled), filled and cancelled orders, Bob's pending one; and a halted pair."""
    TradingPair.objects.create(symbol="XRPUSDT", base_asset="XRP", quote_asset="USDT", tick_size=Decimal("0.0001"),
                               lot_size=Decimal("0.1"), min_notional=Decimal("5"), status=TradingPair.Status.HALTED)
    btc = pairs["BTCUSDT"]
    return {
        "open": make_resting_order(user, btc, quantity="1", filled="0.4").id,
        "filled": make_order(user, btc, quantity="1", filled="1", status=Order.Status.FILLED).id,
        "cancelled": make_order(user, btc, status=Order.Status.CANCELLED, reason="user").id,
        "bobs": make_order(other_user, btc).id,
    }


def database_state() -> tuple:
    """Everything a request could write: orders, requests, trades and the audit log."""
    return (
        list(Order.objects.order_by("id").values_list("id", "status", "quantity", "filled_quantity")),
        list(OrderRequest.objects.values_list("id")),
        list(Trade.objects.values_list("id")),
        list(AuditLog.objects.values_list("id")),
    )


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "field"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_bad_request_gets_a_clear_error_and_writes_nothing(api, anonymous_api, orders, method, path, body,
                                                             status, code, field):
    before = database_state()

    response = send(api, anonymous_api, method, path.format(**orders), body)

    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    if field is not None:
        assert field in error["fields"], error
    assert database_state() == before


def send(api, anonymous_api, method: str, path: str, body):
    if method == "post-anonymous":
        return anonymous_api.post(path, json.dumps(body), content_type="application/json")
    if method == "post-form":
        return api.post(path, body, format="multipart")
    raw = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    return api.post(path, raw, content_type="application/json")


@pytest.mark.django_db
def test_a_body_over_the_limit_is_refused_as_json_and_writes_nothing(api, btc):
    padding = "x" * 30_000
    body = json.dumps({"orders": [{**GOOD, "note": padding}] * 100})       # 3 MB, over Django's 2.5 MB

    response = api.post(BATCH, body, content_type="application/json")

    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_an_overlong_address_is_refused_as_json(api, btc):
    response = api.get("/api/pairs/" + "A" * 9000 + "/")

    assert (response.status_code, response.json()["error"]["code"]) == (414, "url_too_long")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False], ids=["development", "production"])
def test_an_unknown_address_is_a_json_404_in_development_too(client, settings, debug):
    settings.DEBUG = debug

    response = client.get("/api/nowhere/")

    assert response["Content-Type"] == "application/json"
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
