"""Placing, cancelling and reducing orders: the only code on the API side that writes orders.

The order row is the matching worker's inbox. A new order is committed as `pending` together with a
`pg_notify` on the inbox channel (delivered at commit), and from then on only the worker changes it, with
one exception: an order the worker has not taken yet (still `pending`, locked here) is cancelled or
reduced directly, since the worker only ever takes pending rows. Cancels and reduces of resting orders
go through the inbox as `OrderRequest` rows, in the same arrival order as new orders.
"""

import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import connection, transaction

from exchange.errors import DomainError
from exchange.inbox import INBOX_CHANNEL, announce_results, notify, wake
from exchange.listener import listener
from exchange.models import AuditLog, Order, OrderRequest, TradingPair
from exchange.trading.pairs import pair_by_symbol
from exchange.workers import worker_liveness
from matching.units import EXACT, OffGridError, PairUnits

MAX_BATCH_SIZE = 100
MAX_WAIT_SECONDS = 10.0


class OrderError(DomainError):
    """A request about orders that cannot be carried out."""

    code = "order_error"


class OrderRejected(OrderError):
    """A new order, or a new quantity, that breaks a rule of its pair (grid, notional, existence)."""

    code = "order_rejected"


class PairHalted(OrderRejected):
    """An order for a pair whose trading an operator has halted; it may be accepted again later."""

    code = "pair_halted"
    status_code = 409


class PairUnavailable(OrderError):
    """The matching worker of the pair's shard is not serving (stopped, crashed, restarting): orders for it are
    refused rather than left to wait unseen. Retrying shortly is safe, with a `client_order_id` even twice."""

    code = "pair_unavailable"
    status_code = 503
    retry_after_seconds = 2

    def __init__(self, pair: TradingPair) -> None:
        super().__init__(f"the matching engine of {pair.symbol} is not serving right now; try again in a few"
                         " seconds", field="pair")


class BatchRejected(OrderError):
    """A batch in which at least one order is invalid; nothing of it was written."""

    code = "invalid_batch"

    def __init__(self, errors: dict[int, OrderRejected]) -> None:
        self.errors = errors
        indexes = ", ".join(f"orders[{index}]" for index in sorted(errors))
        super().__init__(f"invalid orders in the batch: {indexes}; no order was placed")

    def fields(self) -> dict[str, str]:
        """`{"orders[2].price": "...", "orders[5]": "..."}`: each rejected order's message at its path."""
        return {f"orders[{index}]" + (f".{rejected.field}" if rejected.field else ""): rejected.message
                for index, rejected in self.errors.items()}


class OrderNotFound(OrderError):
    """No order with that id belongs to the user (another user's order is reported the same way)."""

    code = "order_not_found"
    status_code = 404

    def __init__(self, order_id: int | str) -> None:
        super().__init__(f"you have no order {order_id!r}" if isinstance(order_id, str)
                         else f"you have no order {order_id}")


class OrderFinished(OrderError):
    """The order is filled, cancelled or rejected: nothing can change it any more."""

    code = "order_finished"
    status_code = 409

    def __init__(self, order: Order) -> None:
        super().__init__(f"order {order.id} is already {order.status} and can no longer be changed")


@dataclass(frozen=True)
class NewOrder:
    """An order as the user asked for it, checked for shape (types, choices, signs) but not yet
    against the rules of its pair."""

    pair: str
    side: str
    quantity: Decimal
    order_type: str = Order.Type.LIMIT
    time_in_force: str = Order.TimeInForce.GTC
    self_trade: str = Order.SelfTrade.EXPIRE_TAKER
    price: Decimal | None = None
    client_order_id: str | None = None


def place_order(owner: User, new_order: NewOrder, wait_seconds: float = 0.0) -> tuple[Order, bool]:
    """Commits one pending order and notifies its shard; with `wait_seconds`, then waits for the worker
    to take it (see `wait_for_results`). Returns the order and whether it is new: an order whose
    `client_order_id` the owner used before is the earlier order, not a second one. Raises `OrderRejected`
    if it breaks a rule of its pair."""
    order = _checked_order(owner, new_order, _pairs_by_symbol([new_order.pair]))
    (order,), new = _commit_pending_orders(owner, [order])
    return (wait_for_results([order], wait_seconds)[0] if wait_seconds > 0 else order), new


def place_orders(owner: User, new_orders: Sequence[NewOrder], wait_seconds: float = 0.0) -> tuple[list[Order], bool]:
    """Commits a batch of pending orders all or nothing: in one statement with one notify per shard. An order
    whose `client_order_id` the owner used before is not placed again: the earlier order stands in its place.
    Returns the orders and whether any of them is new. Raises `BatchRejected` naming every order that breaks a
    rule of its pair."""
    if not 1 <= len(new_orders) <= MAX_BATCH_SIZE:
        raise OrderRejected(f"a batch holds 1 to {MAX_BATCH_SIZE} orders, not {len(new_orders)}",
                            code="invalid_batch_size", field="orders")
    pairs = _pairs_by_symbol([new_order.pair for new_order in new_orders])
    orders: list[Order] = []
    errors: dict[int, OrderRejected] = {}
    client_ids: set[str] = set()
    for index, new_order in enumerate(new_orders):
        try:
            orders.append(_checked_order(owner, new_order, pairs))
            _check_client_id_once(new_order.client_order_id, client_ids)
        except OrderRejected as error:
            errors[index] = error
    if errors:
        raise BatchRejected(errors)
    orders, new = _commit_pending_orders(owner, orders)
    return (wait_for_results(orders, wait_seconds) if wait_seconds > 0 else orders), new


def order_by_client_id(owner: User, client_order_id: str) -> Order:
    """The owner's order with that client order id; `OrderNotFound` if there is none."""
    order = Order.objects.select_related("pair").filter(owner=owner, client_order_id=client_order_id).first()
    if order is None:
        raise OrderNotFound(client_order_id)
    return order


@transaction.atomic
def request_cancel(owner: User, order_id: int) -> tuple[Order, bool]:
    """Cancels the order, or asks the worker to. Returns the order and whether it is already cancelled
    (True: it was still pending and is cancelled now; False: a cancel request waits in the inbox)."""
    order = _locked_order(owner, order_id)
    if order.status == Order.Status.PENDING:
        _cancel_pending(owner, order)
        return order, True
    with connection.cursor() as cursor:
        cursor.execute(PENDING_CANCEL_EXISTS, [order.id])
        already_requested = cursor.fetchone() is not None
    if not already_requested:
        _queue_request(order, OrderRequest.Kind.CANCEL)
    return order, False


@transaction.atomic
def request_reduce(owner: User, order_id: int, remaining_quantity: Decimal) -> tuple[Order, bool]:
    """Lowers the order's remaining quantity to `remaining_quantity` (zero cancels it), or asks the worker
    to. A pending order is changed directly. Returns the order and whether the change is already done."""
    order = _locked_order(owner, order_id)
    _check_new_remaining(order, remaining_quantity)
    if order.status != Order.Status.PENDING:
        _queue_request(order, OrderRequest.Kind.REDUCE, remaining_quantity)
        return order, False
    if remaining_quantity == 0:
        _cancel_pending(owner, order)
        return order, True
    # Nothing of a pending order is filled, so its new quantity is its new remaining quantity.
    order.quantity = remaining_quantity
    order.save(update_fields=["quantity", "updated_at"])
    _audit(owner, "order_reduced", order, {"quantity": str(remaining_quantity)})
    announce_results(order.pair_id)
    return order, True


def wait_for_results(orders: Sequence[Order], timeout_seconds: float) -> list[Order]:
    """Waits until none of the (committed) orders is pending any more, or `timeout_seconds` have passed,
    and returns them as they are then, in the same order. Sleeps until the process's listener hears of new
    results for their pairs, never polls the table in a loop, and holds no connection while it sleeps."""
    if connection.in_atomic_block:
        raise RuntimeError("wait_for_results must run after the commit: the worker sees only committed orders")
    deadline = time.monotonic() + min(timeout_seconds, MAX_WAIT_SECONDS)
    ids = [order.id for order in orders]
    with listener.watching({order.pair_id for order in orders}) as watch:
        while True:
            watch.reset()      # before the read: a result committed after it wakes the wait below
            current = Order.objects.select_related("pair").in_bulk(ids)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or all(order.status != Order.Status.PENDING for order in current.values()):
                return [current[order_id] for order_id in ids]
            watch.wait(remaining)


def _pairs_by_symbol(symbols: Sequence[str]) -> dict[str, TradingPair]:
    pairs = (pair_by_symbol(symbol) for symbol in set(symbols))
    return {pair.symbol: pair for pair in pairs if pair is not None}


def _checked_order(owner: User, new_order: NewOrder, pairs: dict[str, TradingPair]) -> Order:
    """The unsaved Order for `new_order`, or `OrderRejected` if it breaks a rule of its pair."""
    pair = pairs.get(new_order.pair.upper())
    if pair is None:
        raise OrderRejected(f"unknown pair {new_order.pair!r}", code="unknown_pair", field="pair")
    if pair.status != TradingPair.Status.TRADING:
        raise PairHalted(f"trading in {pair.symbol} is halted", field="pair")
    if not worker_liveness.is_live(pair.shard):
        raise PairUnavailable(pair)
    units = PairUnits(pair.tick_size, pair.lot_size)
    if new_order.price is not None:
        _check_on_grid(units.ticks_from_price, new_order.price, "price")
    _check_on_grid(units.lots_from_quantity, new_order.quantity, "quantity")
    if new_order.price is not None and EXACT.multiply(new_order.price, new_order.quantity) < pair.min_notional:
        raise OrderRejected(
            f"price × quantity {EXACT.multiply(new_order.price, new_order.quantity).normalize(EXACT):f} is below the"
            f" minimum notional {pair.min_notional.normalize(EXACT):f} of {pair.symbol}", code="below_min_notional")
    return Order(
        owner=owner, pair=pair, side=new_order.side, order_type=new_order.order_type,
        time_in_force=new_order.time_in_force, self_trade=new_order.self_trade,
        price=new_order.price, quantity=new_order.quantity, client_order_id=new_order.client_order_id,
    )


def _check_client_id_once(client_order_id: str | None, seen: set[str]) -> None:
    if client_order_id is None:
        return
    if client_order_id in seen:
        raise OrderRejected(f"client_order_id {client_order_id!r} is used twice in this batch",
                            code="duplicate_client_order_id", field="client_order_id")
    seen.add(client_order_id)


def _check_on_grid(to_steps: Callable[[Decimal], int], value: Decimal, field: str) -> None:
    try:
        to_steps(value)
    except OffGridError as error:
        raise OrderRejected(str(error), code=f"{field}_off_grid", field=field) from error


# One statement, so one round trip and its own transaction (the ORM's bulk_create in a transaction took 1.6 ms of
# a 7 ms placement, this 0.7 ms, most of it the commit). An order whose client order id its owner used before is
# skipped. The shards' workers are woken once it has committed, by a NOTIFY of its own (`exchange/inbox.py`).
INSERT_PENDING = (
    "INSERT INTO exchange_order (owner_id, pair_id, side, order_type, time_in_force, self_trade,"
    " price, quantity, client_order_id, filled_quantity, filled_notional, status, reason, created_at, updated_at)"
    " VALUES {rows} ON CONFLICT (owner_id, client_order_id) WHERE client_order_id IS NOT NULL DO NOTHING"
    " RETURNING id, client_order_id, inbox_sequence, created_at")

PENDING_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 'pending', '', now(), now())"
# A single order, the API's commonest call, is placed by a statement prepared once per database connection:
# PostgreSQL then neither parses nor plans it again, which was half its CPU per placement (0.36 → 0.20 ms, and
# 0.55 → 0.36 ms a round trip, measured on a connection of its own). A prepared statement outlives a rollback.
PLACE_ONE_ORDER = "exchange_place_one_order"
PREPARE_PLACE_ONE_ORDER = (
    f"PREPARE {PLACE_ONE_ORDER} (bigint, bigint, text, text, text, text, numeric, numeric, text) AS "
    + INSERT_PENDING.format(rows="($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, 'pending', '', now(), now())"))
EXECUTE_PLACE_ONE_ORDER = f"EXECUTE {PLACE_ONE_ORDER} (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
_prepared_on: weakref.WeakSet = weakref.WeakSet()     # the psycopg2 connections that hold the statement


def _commit_pending_orders(owner: User, orders: list[Order]) -> tuple[list[Order], bool]:
    """Commits the orders as pending and wakes their workers, filling in their ids, sequences and times. An
    order whose client order id the owner used before is replaced by that earlier order. Returns the orders
    and whether any of them is new."""
    values = [value for order in orders for value in (
        order.owner_id, order.pair_id, order.side, order.order_type, order.time_in_force, order.self_trade,
        order.price, order.quantity, order.client_order_id)]
    with connection.cursor() as cursor:
        if len(orders) == 1:
            _prepare_place_one_order(cursor)
            cursor.execute(EXECUTE_PLACE_ONE_ORDER, values)
        else:
            cursor.execute(INSERT_PENDING.format(rows=", ".join([PENDING_ROW] * len(orders))), values)
        placed = cursor.fetchall()
    if placed:
        wake(INBOX_CHANNEL, [str(shard) for shard in sorted({order.pair.shard for order in orders})])
    placed.sort()                        # by id, as the rows were given
    inserted_client_ids = {client_id for _, client_id, _, _ in placed if client_id is not None}
    skipped = [order.client_order_id for order in orders
               if order.client_order_id is not None and order.client_order_id not in inserted_client_ids]
    new = [order for order in orders if order.client_order_id not in skipped]
    for order, (order_id, _, inbox_sequence, created_at) in zip(new, placed, strict=True):
        order.id, order.inbox_sequence, order.created_at, order.updated_at = (
            order_id, inbox_sequence, created_at, created_at)
        order._state.adding, order._state.db = False, "default"
    if not skipped:
        return orders, True
    earlier = {order.client_order_id: order for order in Order.objects.select_related("pair").filter(
        owner=owner, client_order_id__in=skipped)}
    return [earlier[order.client_order_id] if order.client_order_id in skipped else order
            for order in orders], bool(new)


def _prepare_place_one_order(cursor) -> None:
    database_connection = connection.connection      # the live psycopg2 connection, new after a reconnect
    if database_connection not in _prepared_on:
        cursor.execute(PREPARE_PLACE_ONE_ORDER)
        _prepared_on.add(database_connection)


ORDER_COLUMNS = [field.attname for field in Order._meta.concrete_fields]
PAIR_COLUMNS = [field.attname for field in TradingPair._meta.concrete_fields]
# FOR NO KEY UPDATE, the worker's own lock: the worker holds the row during its batch, so this waits at most one
# batch and then sees the state the worker committed. Written out rather than built by the ORM, whose compiling
# of this query was a tenth of the web's CPU under the load test's mix (a cancel for every six placements).
LOCKED_ORDER = (
    "SELECT " + ", ".join([f"o.{column}" for column in ORDER_COLUMNS] + [f"p.{column}" for column in PAIR_COLUMNS])
    + " FROM exchange_order AS o JOIN exchange_tradingpair AS p ON p.id = o.pair_id"
    " WHERE o.id = %s AND o.owner_id = %s FOR NO KEY UPDATE OF o")
PENDING_CANCEL_EXISTS = (
    "SELECT 1 FROM exchange_orderrequest WHERE order_id = %s AND kind = 'cancel' AND status = 'pending' LIMIT 1")


def _locked_order(owner: User, order_id: int) -> Order:
    with connection.cursor() as cursor:
        cursor.execute(LOCKED_ORDER, [order_id, owner.pk])
        row = cursor.fetchone()
    if row is None:
        raise OrderNotFound(order_id)
    order = Order.from_db(connection.alias, ORDER_COLUMNS, row[:len(ORDER_COLUMNS)])
    order.pair = TradingPair.from_db(connection.alias, PAIR_COLUMNS, row[len(ORDER_COLUMNS):])
    if order.status in Order.FINISHED_STATUSES:
        raise OrderFinished(order)
    return order


def _check_new_remaining(order: Order, remaining_quantity: Decimal) -> None:
    if remaining_quantity < 0:
        raise OrderRejected("the new remaining quantity cannot be negative", code="invalid_quantity",
                            field="quantity")
    units = PairUnits(order.pair.tick_size, order.pair.lot_size)
    _check_on_grid(units.lots_from_quantity, remaining_quantity, "quantity")
    if remaining_quantity >= order.remaining_quantity:
        raise OrderRejected(
            f"the new remaining quantity must be smaller than the current one, "
            f"{order.remaining_quantity.normalize(EXACT):f}", code="quantity_not_reduced", field="quantity")


def _cancel_pending(owner: User, order: Order) -> None:
    order.status = Order.Status.CANCELLED
    order.reason = "user"
    order.save(update_fields=["status", "reason", "updated_at"])
    _audit(owner, "order_cancelled", order, {"reason": "user"})
    announce_results(order.pair_id)


def _queue_request(order: Order, kind: str, quantity: Decimal | None = None) -> None:
    OrderRequest.objects.create(order=order, pair=order.pair, kind=kind, quantity=quantity)
    notify(INBOX_CHANNEL, str(order.pair.shard))


def _audit(owner: User, action: str, order: Order, details: dict) -> None:
    AuditLog.objects.create(actor=f"user:{owner.get_username()}", action=action, target=f"order:{order.id}",
                            details={"pair": order.pair.symbol, **details})
