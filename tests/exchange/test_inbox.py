"""Wake-ups are sent after the commit, and a failed one is logged, never the caller's failure."""
import logging
import time

import psycopg2
import pytest
from django.db import connection, transaction

from exchange.inbox import INBOX_CHANNEL, notify, wake


@pytest.mark.django_db(transaction=True)
def test_a_wake_up_that_fails_is_logged_and_the_committed_work_stands(caplog):
    too_long = "x" * 9000          # PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more
    with caplog.at_level(logging.WARNING, logger="exchange.inbox"):
        wake(INBOX_CHANNEL, [too_long])
        with transaction.atomic():
            notify(INBOX_CHANNEL, too_long)

    assert [record.event for record in caplog.records] == ["notify_failed", "notify_failed"]


@pytest.mark.django_db(transaction=True)
def test_a_wake_up_is_sent_only_once_its_transaction_has_committed():
    listening = psycopg2.connect(**connection.get_connection_params())
    listening.autocommit = True
    try:
        listening.cursor().execute(f"LISTEN {INBOX_CHANNEL}")
        with transaction.atomic():
            notify(INBOX_CHANNEL, "7")
            listening.poll()
            assert listening.notifies == []             # not while the transaction is open
        with transaction.atomic():
            notify(INBOX_CHANNEL, "8")
            transaction.set_rollback(True)
        listening.poll()
        deadline = time.monotonic() + 5
        while not listening.notifies and time.monotonic() < deadline:
            time.sleep(0.02)
            listening.poll()
        assert [notice.payload for notice in listening.notifies] == ["7"]
    finally:
        listening.close()
