"""Pipeline benchmark: committed inbox → matching worker → committed trades, on a real PostgreSQL.

Run by `benchmarks.trading` in a child process whose environment points at a scratch benchmark
database (never the development one):

1. throughput: a seeded stream of orders is committed to the inbox with COPY, then one worker drains
   it; orders/s and trades/s over the whole drain and the slowest 5-second window (sustained rate).
   The target asks for a rate sustained at least 30 s: a drain that ends sooner is run again with a
   stream sized from its own rate to last about 36 s;
2. latency at an offered load: a feeder commits small transactions at a fixed rate (with the NOTIFY the
   API sends) while the worker runs; order latency = the worker's first write of the order's result
   (`processed_at`) − the order's creation, trade latency = the taker's `processed_at` − the batch
   pickup, both read back from the rows (they exclude the ~0.1-1 ms of the worker's COMMIT itself,
   which the rows cannot record).
"""
from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from psycopg2.extras import execute_values  # noqa: E402

from exchange.trading.pairs import ensure_demo_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ("BTCUSDT", "ETHUSDT")
MIDS = {"BTCUSDT": 5_000_000, "ETHUSDT": 300_000}          # ticks of 0.01
ACCOUNTS = 50
COLUMNS = ("owner_id", "pair_id", "side", "order_type", "time_in_force", "self_trade", "price", "quantity",
           "filled_quantity", "filled_notional", "status", "reason", "created_at", "updated_at")


def order_rows(count: int, seed: int, pair_ids: dict, owner_ids: list) -> list[tuple]:
    """A balanced two-pair stream: limit orders around a drifting mid (a third of them crossing) and
    10% market orders; about half an order's worth of trades per order."""
    rng = random.Random(seed)
    mids = dict(MIDS)
    rows = []
    for _ in range(count):
        pair = PAIRS[rng.random() < 0.5]
        mids[pair] += rng.choice((-1, 0, 1))
        side = "buy" if rng.random() < 0.5 else "sell"
        offset = rng.randint(-4, 8)
        ticks = mids[pair] - offset if side == "buy" else mids[pair] + offset
        market = rng.random() < 0.10
        price = "" if market else f"{ticks / 100:.2f}"
        rows.append((rng.choice(owner_ids), pair_ids[pair], side, "market" if market else "limit", "gtc",
                     "expire_taker", price, f"{rng.randint(1, 50) / 10000:.4f}"))
    return rows


def setup_market() -> tuple[dict, list]:
    ensure_demo_pairs()
    with connection.cursor() as cursor:
        cursor.execute("SELECT symbol, id FROM exchange_tradingpair WHERE symbol = ANY(%s)", [list(PAIRS)])
        pair_ids = dict(cursor.fetchall())
    owners = [User.objects.get_or_create(username=f"bench{n}")[0].id for n in range(ACCOUNTS)]
    return pair_ids, owners


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE exchange_trade, exchange_orderrequest, exchange_order, exchange_auditlog,"
                       " exchange_enginestate, exchange_workerheartbeat, exchange_divergence, exchange_healthsample,"
                       " exchange_enginecommand")


def copy_inbox(rows: list[tuple]) -> None:
    """Commits the rows as pending orders with COPY (the inbox sequence comes from its default)."""
    buffer = io.StringIO()
    for owner, pair, side, order_type, tif, stp, price, quantity in rows:
        price_text = price or r"\N"
        buffer.write(f"{owner}\t{pair}\t{side}\t{order_type}\t{tif}\t{stp}\t{price_text}\t{quantity}"
                     "\t0\t0\tpending\t\tnow\tnow\n")
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY exchange_order ({', '.join(COLUMNS)}) FROM STDIN", buffer)
        # As after any bulk load: without fresh statistics the planner takes the table for empty and joins
        # the worker's batch UPDATE by sequential scans (seen: one 5,000-row batch ran for minutes).
        cursor.execute("ANALYZE exchange_order")


def count(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def start_worker() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "run_matching_worker", "--shard", "0"], cwd=ROOT,
                            env={**os.environ, "LOG_LEVEL": "warning"})


def stop_worker(worker: subprocess.Popen) -> None:
    worker.terminate()
    worker.wait(60)


def throughput(orders: int, pair_ids: dict, owners: list, prepare=lambda: None) -> dict:
    reset()
    prepare()
    copy_inbox(order_rows(orders, 42, pair_ids, owners))
    worker = start_worker()
    samples = []            # (time, processed orders, trades)
    while True:
        pending = count("SELECT count(*) FROM exchange_order WHERE status = 'pending'")
        samples.append((time.monotonic(), orders - pending, count("SELECT count(*) FROM exchange_trade")))
        if pending == 0:
            break
        time.sleep(0.5)
    stop_worker(worker)
    busy = [s for s in samples if 0 < s[1]]
    started = next(i for i, s in enumerate(samples) if s[1] > 0) - 1
    first, last = samples[max(0, started)], samples[-1]
    elapsed = last[0] - first[0]
    windows = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(busy, busy[10:], strict=False)]
    return {
        "orders_per_s": round(orders / elapsed),
        "trades_per_s": round(last[2] / elapsed),
        "sustained_seconds": round(elapsed, 1),
        "slowest_5s_orders_per_s": round(min(windows)) if windows else None,
        "orders": orders,
        "trades": last[2],
    }


MIN_SUSTAINED_SECONDS = 30


def sustained_throughput(orders: int, pair_ids: dict, owners: list) -> dict:
    """`throughput`, over a drain of at least MIN_SUSTAINED_SECONDS (a second, longer drain if needed)."""
    drained = throughput(orders, pair_ids, owners)
    if drained["sustained_seconds"] < MIN_SUSTAINED_SECONDS:
        longer = -(-drained["orders_per_s"] * (MIN_SUSTAINED_SECONDS + 6) // 50_000) * 50_000
        drained = throughput(longer, pair_ids, owners)
    return drained


def latency(rate: int, seconds: int, pair_ids: dict, owners: list, prepare=lambda: None) -> dict:
    reset()
    prepare()
    worker = start_worker()
    time.sleep(3)                                 # let it load and LISTEN
    offered = offer_paced(order_rows(rate * seconds, 7, pair_ids, owners), rate)
    while count("SELECT count(*) FROM exchange_order WHERE status = 'pending'"):
        time.sleep(0.2)
    stop_worker(worker)
    with connection.cursor() as cursor:
        cursor.execute("SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY"
                       " extract(epoch FROM processed_at - created_at) * 1000) FROM exchange_order")
        order_p50, order_p95, order_p99 = cursor.fetchone()[0]
        cursor.execute("SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY"
                       " extract(epoch FROM o.processed_at - t.executed_at) * 1000)"
                       " FROM exchange_trade t JOIN exchange_order o ON o.id = t.taker_order_id")
        trade_p50, trade_p95 = cursor.fetchone()[0]
    return {"offered_orders_per_s": round(offered), "order_latency_p50_ms": round(order_p50, 2),
            "order_latency_p95_ms": round(order_p95, 2), "order_latency_p99_ms": round(order_p99, 2),
            "trade_latency_p50_ms": round(trade_p50, 2), "trade_latency_p95_ms": round(trade_p95, 2)}


def offer_paced(rows: list[tuple], rate: int) -> float:
    """Commits the rows to the inbox at `rate` per second, a transaction every 5 ms, on schedule; returns the
    rate offered."""
    per_tick = max(1, rate // 200)
    started = time.monotonic()
    with connection.cursor() as cursor:
        for index in range(0, len(rows), per_tick):
            due = started + index / rate
            if (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            insert_pending(cursor, rows[index:index + per_tick])
    return len(rows) / (time.monotonic() - started)


def insert_pending(cursor, rows: list[tuple]) -> None:
    """What the API does for a batch: one transaction, the rows, one NOTIFY."""
    with transaction.atomic():
        execute_values(cursor.cursor, "INSERT INTO exchange_order (owner_id, pair_id, side, order_type,"
                       " time_in_force, self_trade, price, quantity, filled_quantity, filled_notional, status,"
                       " reason, created_at, updated_at) VALUES %s",
                       [(*row[:6], row[6] or None, row[7]) for row in rows],
                       template="(%s, %s, %s, %s, %s, %s, %s::numeric, %s::numeric, 0, 0, 'pending', '',"
                                " clock_timestamp(), clock_timestamp())")
        cursor.execute("SELECT pg_notify('exchange_inbox', '0')")


def set_mode(mode: str, percentage: int, pair_ids: dict) -> None:
    """Puts every benchmark pair's engine in `mode` as a committed control command would have."""
    with connection.cursor() as cursor:
        for pair_id in pair_ids.values():
            cursor.execute(
                "INSERT INTO exchange_enginestate (pair_id, mode, percentage, settings, breaker_state, breaker_trips,"
                " command_sequence, trade_sequence, last_inbox_sequence, updated_at)"
                " VALUES (%s, %s, %s, '{}', 'closed', 0, 0, 0, 0, now())", [pair_id, mode, percentage])


def migration_main() -> None:
    """The same stream through one worker in each mode: what running both books costs."""
    orders = int(os.environ.get("PIPELINE_ORDERS", "200000"))
    # Offered below every mode's capacity, so the latency shows the engine's cost, not a queue building up.
    rate = int(os.environ.get("MIGRATION_RATE", "2000"))
    seconds = int(os.environ.get("PIPELINE_SECONDS", "15"))
    pair_ids, owners = setup_market()
    figures = {}
    for name, mode, percentage in (("legacy_only", "legacy_only", 0), ("migrating_50", "migrating", 50),
                                   ("adaptive_only", "adaptive_only", 0)):
        drained = throughput(orders, pair_ids, owners, lambda m=mode, p=percentage: set_mode(m, p, pair_ids))
        divergences = count("SELECT count(*) FROM exchange_divergence")
        timed = latency(rate, seconds, pair_ids, owners, lambda m=mode, p=percentage: set_mode(m, p, pair_ids))
        figures[name] = {"orders_per_s": drained["orders_per_s"], "trades_per_s": drained["trades_per_s"],
                         "offered_orders_per_s": timed["offered_orders_per_s"],
                         "order_latency_p50_ms": timed["order_latency_p50_ms"],
                         "order_latency_p95_ms": timed["order_latency_p95_ms"],
                         "order_latency_p99_ms": timed["order_latency_p99_ms"],
                         "divergences": divergences + count("SELECT count(*) FROM exchange_divergence")}
    reset()
    print(json.dumps(figures))


def main() -> None:
    orders = int(os.environ.get("PIPELINE_ORDERS", "1000000"))
    rate = int(os.environ.get("PIPELINE_RATE", "5000"))
    seconds = int(os.environ.get("PIPELINE_SECONDS", "20"))
    pair_ids, owners = setup_market()
    figures = {"cores": os.cpu_count(), **sustained_throughput(orders, pair_ids, owners),
               **latency(rate, seconds, pair_ids, owners)}
    reset()
    print(json.dumps(figures))


if __name__ == "__main__":
    migration_main() if "--migration" in sys.argv else main()
