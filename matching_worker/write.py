"""Writing a batch in its transaction: trades, order states, request and control outcomes, audit entries and
divergences with COPY or one statement each, then the engines' checkpoint and the results NOTIFY of the
touched pairs, then COMMIT (`MatchingWorker.commit_batch`).

Writing touches nothing but the batch and its session, so the serving loop runs it in its writer thread while
the engines compute the next batch; whatever needs the engines (the checkpoint, the COPY text) is prepared by
`format_batch` on the engines' thread beforehand.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from psycopg2.extras import execute_values

from exchange.inbox import RESULTS_CHANNEL

if TYPE_CHECKING:
    from matching.migration import Disagreement
    from matching_worker.batch import Batch
    from matching_worker.pairs import PairRuntime

# Per-session scratch table for a batch's order updates (lots and ticks), emptied by each COMMIT. Lots are
# numeric: a quantity the API accepts can be 10^25 lots, and a bigint overflow failed the batch on every retry.
ORDER_UPDATES_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS worker_order_update (id bigint, status text, filled numeric, notional numeric,"
    " quantity numeric, reason text, priority bigint) ON COMMIT DELETE ROWS")
# A rejected order has no fills (NULL lots): its amounts stay as they are.
PREPARE_UPDATE_ORDERS = (
    "PREPARE update_orders AS"
    " UPDATE exchange_order AS o SET status = v.status, reason = v.reason,"
    " filled_quantity = COALESCE(v.filled * p.lot_size, o.filled_quantity),"
    " filled_notional = COALESCE(v.notional * p.tick_size * p.lot_size, o.filled_notional),"
    " average_fill_price = CASE WHEN v.filled > 0 THEN round(v.notional * p.tick_size / v.filled, 18)"
    "   ELSE o.average_fill_price END,"
    " quantity = COALESCE(v.quantity * p.lot_size, o.quantity),"
    " priority_sequence = COALESCE(v.priority, o.priority_sequence), updated_at = clock_timestamp(),"
    " processed_at = COALESCE(o.processed_at, clock_timestamp())"
    " FROM worker_order_update AS v, exchange_tradingpair AS p WHERE o.id = v.id AND p.id = o.pair_id")
PREPARED_STATEMENTS = (PREPARE_UPDATE_ORDERS,)

NULL = r"\N"


def format_batch(batch: Batch, pairs: dict[int, PairRuntime], cursor) -> None:
    """Builds what the writer thread sends: the checkpoint of the engines as they are after the batch (they
    move on to the next batch while this one is written), and the trades and order rows as COPY text
    (the writer is the pipeline's slower stage, and its Python would also hold the GIL against the engines)."""
    batch.checkpoint = checkpoint_sql(cursor, pairs, batch)
    batch.announcement = results_announcement(batch)
    batch.trades_copy = copy_text(batch.trades)
    batch.orders_copy = copy_text(batch.orders.values())


def write_batch(batch: Batch) -> None:
    """Writes the batch with COPY: formatting rows as text ourselves measured 4x cheaper than
    psycopg2's per-value adaptation (`execute_values` spent 30% of the worker's time in mogrify)."""
    cursor = batch.session.cursor()
    try:
        if batch.trades:
            copy_rows(cursor, "exchange_trade (pair_id, sequence, maker_order_id, taker_order_id, price,"
                      " quantity, taker_side, engine_sequence, executed_at)", batch.trades_copy)
        if batch.orders:
            copy_rows(cursor, "worker_order_update", batch.orders_copy)
            cursor.execute("EXECUTE update_orders")
        if batch.requests:
            execute_values(cursor, "UPDATE exchange_orderrequest AS r SET status = v.status, reason = v.reason,"
                           " processed_at = v.at FROM (VALUES %s) AS v(id, status, reason, at) WHERE r.id = v.id",
                           batch.requests, template="(%s::bigint, %s, %s, %s::timestamptz)", page_size=5000)
        if batch.audits:
            copy_rows(cursor, "exchange_auditlog (actor, action, target, details, created_at)",
                      copy_text((actor, action, target, json.dumps(details), batch.now)
                                for actor, action, target, details in batch.audits))
        if batch.controls:
            execute_values(cursor, "UPDATE exchange_enginecommand AS c SET status = v.status, reason ="
                           " CASE WHEN v.reason = '' THEN c.reason ELSE v.reason END, applied_at = now()"
                           " FROM (VALUES %s) AS v(id, status, reason) WHERE c.id = v.id", batch.controls,
                           template="(%s::bigint, %s, %s)")
        if batch.divergences:
            execute_values(cursor, "INSERT INTO exchange_divergence (pair_id, kind, engine_sequence, command,"
                           " legacy_events, adaptive_events, created_at) VALUES %s",
                           [divergence_row(pair_id, d, batch.now) for pair_id, d in batch.divergences])
        if batch.checkpoint:
            cursor.execute(batch.checkpoint)
    finally:
        cursor.close()


def checkpoint_sql(cursor, pairs: dict[int, PairRuntime], batch: Batch) -> bytes:
    """The touched pairs' engine checkpoints, as one statement: one round trip per batch instead of one per pair
    (with the NOTIFY that was part of it then, a fifth of a small batch's time at 5,000 orders/s)."""
    if not batch.touched:
        return b""
    rows = []
    for pair_id in sorted(batch.touched):
        runtime = pairs[pair_id]
        engine = runtime.engine
        rows.append(cursor.mogrify(
            "(%s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::text, %s::integer, %s::jsonb, %s::text,"
            " %s::integer)",
            [pair_id, engine.sequence, runtime.trade_sequence, runtime.last_inbox_sequence, engine.mode,
             engine.percentage, json.dumps(engine.settings.to_json()), engine.breaker.state,
             engine.breaker.trips]))
    values = b", ".join(rows)
    return (
        b"UPDATE exchange_enginestate AS e SET command_sequence = v.command_sequence,"
        b" trade_sequence = v.trade_sequence, last_inbox_sequence = v.last_inbox_sequence, mode = v.mode,"
        b" percentage = v.percentage, settings = v.settings, breaker_state = v.breaker_state,"
        b" breaker_trips = v.breaker_trips, updated_at = " + cursor.mogrify("%s", [batch.now]) +
        b" FROM (VALUES " + values + b") AS v(pair_id, command_sequence, trade_sequence, last_inbox_sequence,"
        b" mode, percentage, settings, breaker_state, breaker_trips) WHERE e.pair_id = v.pair_id")


def results_announcement(batch: Batch) -> bytes:
    """The NOTIFY of the touched pairs' new results, sent once the batch has committed, in a transaction of its
    own: a NOTIFY in the batch's transaction would hold PostgreSQL's server-wide NOTIFY lock through the batch's
    commit flush, and every placement's NOTIFY would queue behind it (see `exchange/inbox.py`)."""
    if not batch.touched:
        return b""
    return (b"SELECT pg_notify('" + RESULTS_CHANNEL.encode() + b"', pair_id::text) FROM (VALUES " +
            b", ".join(b"(%d)" % pair_id for pair_id in sorted(batch.touched)) + b") AS touched(pair_id)")


def copy_text(rows) -> str:
    """Rows (tuples of str/int/Decimal/datetime/None) in PostgreSQL's COPY text format. Values never contain
    tabs, newlines or backslashes here: enums, numbers, timestamps, compact JSON."""
    return "".join("\t".join(NULL if value is None else str(value) for value in row) + "\n" for row in rows)


def copy_rows(cursor, table: str, text: str) -> None:
    cursor.copy_expert(f"COPY {table} FROM STDIN", io.StringIO(text))


def divergence_row(pair_id: int, disagreement: Disagreement, now: object) -> tuple:
    outcome = disagreement.adaptive_outcome
    return (pair_id, disagreement.kind, disagreement.sequence, json.dumps(asdict(disagreement.command)),
            json.dumps(disagreement.legacy_events), json.dumps(outcome if isinstance(outcome, str) else outcome),
            now)
