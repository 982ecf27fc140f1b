"""Claiming work: the shard's pending control commands, then its oldest pending orders and cancel/reduce
requests merged in arrival order (`inbox_sequence`), each row locked for the batch's transaction.

A claimed inbox entry is a tuple `(inbox_sequence, kind, id, pair_id, owner_id, side, order_type,
time_in_force, self_trade, price, quantity, target)`: kind `place` for an order (target NULL), `cancel` or
`reduce` for a request (owner to price NULL, target the order it names). A control command is `(id, pair_id,
kind, percentage, settings, actor)`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matching_worker.batch import Batch

# Control commands jump the queue of orders. SKIP LOCKED: a command locked by another transaction belongs to
# the batch the other session is committing, which has applied it already.
PREPARE_CLAIM_CONTROLS = (
    "PREPARE claim_controls (bigint[], bigint) AS"
    " SELECT id, pair_id, kind, percentage, settings, actor FROM exchange_enginecommand"
    " WHERE status = 'pending' AND pair_id = ANY($1) ORDER BY id LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED")

# The inbox claim, prepared once per session (planning it took ~0.5 ms a batch, a tenth of a small batch's
# time) without its exclusion, for the common case of no batch in flight. With a batch in flight its rows are
# excluded by id with a constant array, which PostgreSQL looks up in a hash table; as a parameter of a
# prepared statement the array would be scanned for every row (25 million comparisons for two 5,000-row
# batches).
CLAIM_INBOX = (
    "WITH candidates AS ("
    "  (SELECT inbox_sequence, id, true AS is_order FROM exchange_order"
    "   WHERE status = 'pending' AND pair_id = ANY({pairs}){skip_orders} ORDER BY inbox_sequence LIMIT {limit})"
    "  UNION ALL"
    "  (SELECT inbox_sequence, id, false FROM exchange_orderrequest"
    "   WHERE status = 'pending' AND pair_id = ANY({pairs}){skip_requests} ORDER BY inbox_sequence LIMIT {limit})"
    "  ORDER BY 1 LIMIT {limit}),"
    # LATERAL: each candidate is looked up (and locked) by its primary key, whatever the statistics say.
    " orders AS (SELECT o.* FROM candidates AS c, LATERAL (SELECT inbox_sequence, 'place' AS kind, id, pair_id,"
    "   owner_id, side, order_type, time_in_force, self_trade, price, quantity, NULL::bigint AS target,"
    "   extract(epoch FROM created_at)::float8"
    "   FROM exchange_order WHERE id = c.id AND status = 'pending' FOR NO KEY UPDATE) AS o WHERE c.is_order),"
    " requests AS (SELECT r.* FROM candidates AS c, LATERAL (SELECT inbox_sequence, kind, id, pair_id,"
    "   NULL::integer, NULL, NULL, NULL, NULL, NULL::numeric, quantity, order_id,"
    "   extract(epoch FROM created_at)::float8 FROM exchange_orderrequest"
    "   WHERE id = c.id AND status = 'pending' FOR NO KEY UPDATE) AS r WHERE NOT c.is_order)"
    " SELECT * FROM orders UNION ALL SELECT * FROM requests ORDER BY 1")
PREPARE_CLAIM_INBOX = "PREPARE claim_inbox (bigint[], integer) AS " + CLAIM_INBOX.format(
    pairs="$1", limit="$2", skip_orders="", skip_requests="")
CLAIM_INBOX_BESIDE_IN_FLIGHT = CLAIM_INBOX.format(
    pairs="%(pairs)s", limit="%(limit)s", skip_orders=" AND id <> ALL(%(orders)s::bigint[])",
    skip_requests=" AND id <> ALL(%(requests)s::bigint[])")

PREPARED_STATEMENTS = (PREPARE_CLAIM_CONTROLS, PREPARE_CLAIM_INBOX)


def claim_controls(cursor, pair_ids: list[int], limit: int | None) -> list[tuple]:
    """Pending control commands of the shard's pairs, oldest first; `limit` None takes them all."""
    cursor.execute("EXECUTE claim_controls (%s, %s)", [pair_ids, limit])
    return cursor.fetchall()


def claim_inbox(cursor, pair_ids: list[int], limit: int, in_flight: Batch | None) -> list[tuple]:
    """The oldest pending orders and requests of the shard's pairs, merged in arrival order, locked.

    One statement, hence one snapshot: two separate SELECTs could see a request committed between them
    ahead of an order committed before it, and execute them out of arrival order. The statement picks the
    batch first and then locks exactly those rows, waiting for a lock if it must (an API cancel holds its
    order for a moment): skipping a locked row would execute later orders before it. The rows of the batch
    still being committed (`in_flight`) look pending in this snapshot and are left out by id. The lock is
    NO KEY UPDATE, not UPDATE: inserting a cancel request takes KEY SHARE on the order it names, which must
    not hold the claim up.
    """
    if in_flight is None:
        cursor.execute("EXECUTE claim_inbox (%s, %s)", [pair_ids, limit])
    else:
        cursor.execute(CLAIM_INBOX_BESIDE_IN_FLIGHT, {"pairs": pair_ids, "limit": limit,
                                                      "orders": in_flight.claimed_orders,
                                                      "requests": in_flight.claimed_requests})
    return cursor.fetchall()
