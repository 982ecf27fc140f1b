"""The inbox's wake-up calls: the PostgreSQL NOTIFY channels between the web processes and the matching
workers.

The order, request and engine-command rows are the inbox; a notification only says "look now". It is sent
in the transaction that writes the rows and delivered at its commit, so whoever it wakes sees them. The
matching worker listens with these names; the web and the control plane send with `notify`.
"""

from django.db import connection

INBOX_CHANNEL = "exchange_inbox"      # payload: the shard with new orders, requests or engine commands
PAIRS_CHANNEL = "exchange_pairs"      # payload: the shard of a pair just created (a trigger sends it, migration 0007)
RESULTS_CHANNEL_PREFIX = "exchange_results_"


def results_channel(pair_id: int) -> str:
    """The channel a pair's results are announced on: an API request waiting for its orders listens here."""
    return f"{RESULTS_CHANNEL_PREFIX}{pair_id}"


def notify(channel: str, payload: str = "") -> None:
    """A NOTIFY in the current transaction: PostgreSQL delivers it only if, and when, it commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])
