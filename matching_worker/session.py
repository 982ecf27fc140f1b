"""The batch sessions: PostgreSQL connections of the worker's own, one transaction per batch, set up once
with the shard's advisory lock, planner settings that keep every batch statement on its indexes, and the
statements the worker gives them (the scratch table of order updates, the prepared statements of the claim
and the write)."""
from __future__ import annotations

import logging
from typing import Any

import psycopg2
from django.db import connection

from exchange.ops.slow_queries import TimedCursor

log = logging.getLogger("matching_worker")

SHARD_LOCK_CLASS = 7420          # pg_advisory_lock(SHARD_LOCK_CLASS + i, shard): held by batch session i of the shard

# Batch sessions look rows up by index and nothing else, and these settings make the planner keep to that
# whatever its statistics say. They did mislead it: the scratch table has none, so the planner guessed its size
# and, while the order table was small enough, hash-joined it by scanning the whole order table (10-15 ms per
# batch however few rows it had); and a generic plan made while the tables were empty (after a TRUNCATE) scanned
# them for every row once they had grown (a 45 s stall). Generic plans: with index lookups only, no plan here
# depends on its parameters.
BATCH_SESSION_SETTINGS = (
    "SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off;"
    " SET plan_cache_mode = force_generic_plan")


class BatchSession:
    """A PostgreSQL session of its own for batch transactions: claim, write, COMMIT.

    The worker keeps two, so that one batch can commit while the next is claimed and computed (the
    commit's server time and the engines' Python time then run on two cores). Each holds its own
    advisory lock on the shard for its whole life: one worker per shard, and a worker restarted after a
    crash waits until both of the dead one's sessions are gone, not only the idle one. Otherwise it could
    rebuild its books while a dying session's COMMIT was still landing, and execute that batch again.
    """

    def __init__(self, shard: int, lock_class: int, setup: tuple[str, ...]) -> None:
        self.shard = shard
        self.lock_class = lock_class
        self.setup = setup           # run once per connection, after the planner settings
        self.pg: Any = None          # a psycopg2 connection (untyped), None until opened

    def open(self, lock: bool = False) -> None:
        """(Re)connects; with `lock`, first waits for the shard's lock (the serving loop; a one-off batch in
        a test or a shell does not take it)."""
        self.close()
        self.pg = connection.get_new_connection(connection.get_connection_params())
        self.pg.cursor_factory = TimedCursor        # the batch statements in /admin/slow-queries
        self.pg.autocommit = True
        with self.pg.cursor() as cursor:
            if lock:
                self._wait_for_shard_lock(cursor)
            cursor.execute(BATCH_SESSION_SETTINGS)
            for statement in self.setup:
                cursor.execute(statement)
        self.pg.autocommit = False

    def _wait_for_shard_lock(self, cursor) -> None:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [self.lock_class, self.shard])
        if not cursor.fetchone()[0]:
            log.warning("waiting for the shard's previous worker to release it",
                        extra={"event": "shard_lock_wait", "shard": self.shard})
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [self.lock_class, self.shard])

    def cursor(self):
        if self.pg is None or self.pg.closed:
            self.open()
        return self.pg.cursor()

    def commit(self) -> None:
        self.pg.commit()

    def announce(self, statement: bytes) -> None:
        """Runs a NOTIFY statement in a transaction of its own, after a commit (one round trip)."""
        self.pg.autocommit = True
        try:
            with self.pg.cursor() as cursor:
                cursor.execute(statement)
        finally:
            self.pg.autocommit = False

    def rollback(self) -> None:
        """Ends a failed or empty transaction; a broken connection is closed and reopened on next use."""
        if self.pg is None or self.pg.closed:
            return
        try:
            self.pg.rollback()
        except psycopg2.Error:
            self.close()

    def close(self) -> None:
        if self.pg is not None and not self.pg.closed:
            self.pg.close()
        self.pg = None
