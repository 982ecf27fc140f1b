"""A seeded stream of orders and cancel requests, fed into the inbox the way the API feeds it, and the
final state read back in a form that does not depend on database ids."""
from __future__ import annotations

import json
import random
import time
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import connection, transaction

from exchange.models import AuditLog, Order, OrderRequest, Trade, TradingPair
from exchange.trading.pairs import ensure_demo_pairs
from matching_worker.worker import MatchingWorker

PAIRS = ("BTCUSDT", "ETHUSDT")


def make_stream(count: int, seed: int) -> list[tuple]:
    """Entries ("place", pair, account, side, type, tif, stp, price, qty) or ("cancel", pair, index)."""
    rng = random.Random(seed)
    mids = {"BTCUSDT": 5_000_000, "ETHUSDT": 300_000}       # in ticks of 0.01
    placed: dict[str, list[int]] = {pair: [] for pair in PAIRS}
    stream: list[tuple] = []
    while len(stream) < count:
        pair = rng.choice(PAIRS)
        mids[pair] += rng.choice((-1, 0, 1))
        if rng.random() < 0.15 and placed[pair]:
            stream.append(("cancel", pair, rng.choice(placed[pair][-200:])))
            continue
        side = rng.choice(("buy", "sell"))
        offset = rng.randint(-3, 25)
        ticks = mids[pair] - offset if side == "buy" else mids[pair] + offset
        order_type = "market" if rng.random() < 0.08 else "limit"
        tif = rng.choice(("gtc",) * 7 + ("ioc", "fok", "post_only"))
        stp = rng.choice(("expire_taker",) * 5 + ("expire_maker", "expire_both", "none"))
        lots = rng.randint(1, 40)
        placed[pair].append(len(stream))
        stream.append(("place", pair, rng.randint(1, 12), side, order_type, tif, stp,
                       None if order_type == "market" else Decimal(ticks) / 100, Decimal(lots) / 10000))
    return stream


def prepare_market() -> dict[int, User]:
    ensure_demo_pairs()
    return {n: User.objects.get_or_create(username=f"trader{n}")[0] for n in range(1, 13)}


def feed(stream: list[tuple], users: dict[int, User], chunk: int = 500, pause: float = 0.0) -> list[int]:
    """Commits the stream in chunks, each with the NOTIFY the API sends; returns the order id per entry."""
    pairs = {pair.symbol: pair for pair in TradingPair.objects.filter(symbol__in=PAIRS)}
    ids: list[int] = []
    for start in range(0, len(stream), chunk):
        with transaction.atomic():
            for run in consecutive_runs(stream[start:start + chunk]):
                if run[0][0] == "place":
                    orders = Order.objects.bulk_create([
                        Order(owner=users[account], pair=pairs[pair], side=side, order_type=order_type,
                              time_in_force=tif, self_trade=stp, price=price, quantity=quantity)
                        for _, pair, account, side, order_type, tif, stp, price, quantity in run])
                    ids.extend(order.id for order in orders)
                else:
                    OrderRequest.objects.bulk_create([
                        OrderRequest(order_id=ids[index], pair=pairs[pair], kind="cancel") for _, pair, index in run])
                    ids.extend(None for _ in run)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify('exchange_inbox', '0')")
        if pause:
            time.sleep(pause)
    return ids


def consecutive_runs(entries: list[tuple]) -> list[list[tuple]]:
    """Splits entries into runs of the same kind, so each run is one bulk insert in stream order."""
    runs: list[list[tuple]] = []
    for entry in entries:
        if runs and runs[-1][0][0] == entry[0]:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


def final_state(ids: list[int]) -> tuple[list, list, list]:
    """Orders, trades and request outcomes, with order ids replaced by stream positions."""
    position = {order_id: index for index, order_id in enumerate(ids) if order_id is not None}
    orders = sorted(
        (position[o.id], o.status, o.reason, o.quantity, o.filled_quantity, o.filled_notional,
         o.average_fill_price, o.priority_sequence)
        for o in Order.objects.all())
    trades = sorted(
        (t.pair.symbol, t.sequence, position[t.maker_order_id], position[t.taker_order_id], t.price, t.quantity,
         t.taker_side, t.engine_sequence)
        for t in Trade.objects.select_related("pair"))
    requests = sorted((position[r.order_id], r.kind, r.status, r.reason) for r in OrderRequest.objects.all())
    return orders, trades, requests


def drain_in_process() -> int:
    """Executes the whole inbox with a worker in this process, batch after batch (the reference runs);
    returns how many entries it took."""
    worker = MatchingWorker(0)
    taken = 0
    try:
        while batch := worker.process_batch():
            taken += batch
    finally:
        worker.close()
    return taken


def worker_audit_trail(ids: list[int]) -> list[tuple]:
    """The worker's audit entries about orders (cancels, rejections), with order ids as stream positions."""
    position = {order_id: index for index, order_id in enumerate(ids) if order_id is not None}
    return sorted((entry.action, position[int(entry.target.removeprefix("order:"))], json.dumps(entry.details))
                  for entry in AuditLog.objects.filter(actor__startswith="worker:", target__startswith="order:"))


def reset_market() -> None:
    """Forgets every order, trade and engine checkpoint (the pairs and users stay)."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE exchange_trade, exchange_orderrequest, exchange_order, exchange_auditlog,"
                       " exchange_enginestate, exchange_workerheartbeat")
