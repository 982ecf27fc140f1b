"""The wake-up calls between the processes: PostgreSQL NOTIFY channels.

The order, request and engine-command rows are the inbox; a notification only says "look now". It is sent
once the transaction that writes the rows has committed, in a transaction of its own, so whoever it wakes sees
them. Not inside that transaction: PostgreSQL serializes every commit that carries a NOTIFY on one lock of the
whole server, held until the commit is flushed to disk, and under load the placements queued there ("COMMIT
waiting", `object 0 of class 1262` in pg_locks). A transaction that only notifies writes nothing and holds the
lock for microseconds. Should a process die between the commit and its NOTIFY, the worker's look after a quiet
heartbeat period, and the web's `?wait` timeout, still find the rows.
"""

import logging

from django.db import DatabaseError, connection, transaction

log = logging.getLogger(__name__)

INBOX_CHANNEL = "exchange_inbox"      # to the workers; payload: the shard with new orders, requests or commands
PAIRS_CHANNEL = "exchange_pairs"      # to the workers; payload: the shard of a pair just created (a trigger)
RESULTS_CHANNEL = "exchange_results"  # to the web; payload: the id of a pair whose orders have new results
CHANGES_CHANNEL = "exchange_changes"  # to the web; payload: what changed (`pairs`, `tokens`; triggers send it)
PUBLISHED_CHANNEL = "exchange_published"   # to the web; payload: the id of a pair whose market data was published
PROFILE_CHANNEL = "exchange_worker_profile"  # to the workers; payload: a profile request (JSON, with its shard)


def notify(channel: str, payload: str = "") -> None:
    """A NOTIFY once the current transaction has committed (at once outside one); none if it rolls back. It is
    a wake-up, not the data: if it fails, what it announces is committed all the same and is found by the next
    look (the worker's after a quiet heartbeat period, a waiting request's at its timeout), so the failure is
    logged and the caller's answer stands."""
    transaction.on_commit(lambda: wake(channel, [payload]), robust=True)


def wake(channel: str, payloads: list[str]) -> None:
    """NOTIFYs on the channel, one per payload, in one statement; a failure is logged, not raised."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload", [channel, payloads])
    except DatabaseError as error:
        log.warning("wake-up not sent; the next look finds the rows", extra={
            "event": "notify_failed", "channel": channel, "error": str(error)})


def announce_results(pair_id: int) -> None:
    """Wakes the requests waiting for results of the pair's orders (at commit)."""
    notify(RESULTS_CHANNEL, str(pair_id))
