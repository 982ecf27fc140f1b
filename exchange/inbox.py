"""The wake-up calls between the processes: PostgreSQL NOTIFY channels.

The order, request and engine-command rows are the inbox; a notification only says "look now". It is sent
once the transaction that writes the rows has committed, in a transaction of its own, so whoever it wakes sees
them. Not inside that transaction: PostgreSQL serializes every commit that carries a NOTIFY on one lock of the
whole server, held until the commit is flushed to disk, and under load the placements queued there ("COMMIT
waiting", `object 0 of class 1262` in pg_locks). A transaction that only notifies writes nothing and holds the
lock for microseconds. Should a process die between the commit and its NOTIFY, the worker's look after a quiet
heartbeat period, and the web's `?wait` timeout, still find the rows.
"""

from django.db import connection, transaction

INBOX_CHANNEL = "exchange_inbox"      # to the workers; payload: the shard with new orders, requests or commands
PAIRS_CHANNEL = "exchange_pairs"      # to the workers; payload: the shard of a pair just created (a trigger)
RESULTS_CHANNEL = "exchange_results"  # to the web; payload: the id of a pair whose orders have new results
CHANGES_CHANNEL = "exchange_changes"  # to the web; payload: what changed (`pairs`, `tokens`; triggers send it)
PUBLISHED_CHANNEL = "exchange_published"   # to the web; payload: the id of a pair whose market data was published


def notify(channel: str, payload: str = "") -> None:
    """A NOTIFY once the current transaction has committed (at once outside one); none if it rolls back."""
    transaction.on_commit(lambda: _send(channel, payload))


def _send(channel: str, payload: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])


def announce_results(pair_id: int) -> None:
    """Wakes the requests waiting for results of the pair's orders (at commit)."""
    notify(RESULTS_CHANNEL, str(pair_id))
