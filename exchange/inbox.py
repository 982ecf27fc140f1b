"""The wake-up calls between the processes: PostgreSQL NOTIFY channels.

The order, request and engine-command rows are the inbox; a notification only says "look now". It is sent
in the transaction that writes the rows and delivered at its commit, so whoever it wakes sees them.
"""

from django.db import connection

INBOX_CHANNEL = "exchange_inbox"      # to the workers; payload: the shard with new orders, requests or commands
PAIRS_CHANNEL = "exchange_pairs"      # to the workers; payload: the shard of a pair just created (a trigger)
RESULTS_CHANNEL = "exchange_results"  # to the web; payload: the id of a pair whose orders have new results
CHANGES_CHANNEL = "exchange_changes"  # to the web; payload: what changed (`pairs`, `tokens`; triggers send it)


def notify(channel: str, payload: str = "") -> None:
    """A NOTIFY in the current transaction: PostgreSQL delivers it only if, and when, it commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])


def announce_results(pair_id: int) -> None:
    """Wakes the requests waiting for results of the pair's orders (at commit)."""
    notify(RESULTS_CHANNEL, str(pair_id))
