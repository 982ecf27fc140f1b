"""`MatchingWorker`: the books of one shard and one whole batch, from the claim to the commit.

The batch size follows the load by construction: a batch takes whatever is pending, up to `max_batch`: one
order when idle (lowest latency), thousands under load (one commit for all of them). `ShardServer` runs
batches in a loop; tests and shells call `process_batch` directly.
"""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.utils import timezone

from exchange.ops import webhooks
from exchange.ops.process_metrics import MetricsPublisher
from exchange.stores import redis_client
from matching_worker.batch import Batch
from matching_worker.claim import PREPARED_STATEMENTS as CLAIM_STATEMENTS
from matching_worker.claim import claim_controls, claim_inbox
from matching_worker.execute import execute_claim
from matching_worker.health_recorder import HealthRecorder, resident_memory_bytes
from matching_worker.metrics import WorkerMetrics
from matching_worker.pairs import PairRuntime, adaptive_book_class, load_pairs
from matching_worker.publish import MarketPublisher
from matching_worker.quarantine import Quarantine
from matching_worker.session import SHARD_LOCK_CLASS, BatchSession
from matching_worker.write import ORDER_UPDATES_TABLE, format_batch, write_batch
from matching_worker.write import PREPARED_STATEMENTS as WRITE_STATEMENTS

log = logging.getLogger("matching_worker")
# What each batch session prepares once it is connected: the scratch table of order updates, the claim's and the
# write's statements.
SESSION_SETUP = (ORDER_UPDATES_TABLE, *CLAIM_STATEMENTS, *WRITE_STATEMENTS)


class MatchingWorker:
    """The books of one shard and their batches: `prepare_batch` claims and computes a batch in a session's
    transaction, `commit_batch` writes and commits it; `process_batch` does both."""

    def __init__(self, shard: int, max_batch: int = 5000, heartbeat_every: float = 2.0,
                 publisher: MarketPublisher | None = None, metrics: WorkerMetrics | None = None) -> None:
        self.shard = shard
        self.max_batch = max_batch
        self.heartbeat_every = heartbeat_every
        self.actor = f"worker:shard-{shard}"
        self.pairs: dict[int, PairRuntime] = {}
        self.stale = True            # the books must be (re)built from the database before the next batch
        self.in_hand = 0             # inbox entries and controls claimed and not yet committed
        self.last_claim: list[tuple] = []     # the inbox entries and control commands of the latest claim
        self.last_controls: list[tuple] = []
        self.stopping = False
        self.batches = 0
        self.commands = 0
        self.adaptive_class = adaptive_book_class()
        self.publisher = publisher            # None: nothing is published (tests and shells)
        self.metrics = metrics or WorkerMetrics()
        self.sessions = (BatchSession(shard, SHARD_LOCK_CLASS, SESSION_SETUP),
                         BatchSession(shard, SHARD_LOCK_CLASS + 1, SESSION_SETUP))
        self.quarantine = Quarantine(shard, self.actor, self.metrics)
        # Health samples and the metrics every METRICS_COLLECTION_INTERVAL (sooner when heartbeats are sooner, as
        # in tests).
        every = min(heartbeat_every, settings.METRICS_COLLECTION_INTERVAL)
        self.health = HealthRecorder(lambda: self.pairs, every=every)
        self.metrics_publisher = MetricsPublisher(
            f"worker-{shard}", self.metrics.registry,
            redis_client(), every)

    # ---- the books ----------------------------------------------------------------------------
    def load(self) -> None:
        """(Re)builds every book of the shard from the committed state."""
        self.pairs = load_pairs(self.shard, {}, self.adaptive_class)
        self.stale = False
        self._publish_snapshots(self.pairs)
        log.info("books loaded", extra={"event": "books_loaded", "shard": self.shard,
                                        "pairs": [p.symbol for p in self.pairs.values()],
                                        "resting": sum(len(p.fills) for p in self.pairs.values())})

    def add_new_pairs(self) -> None:
        """Starts serving the shard's pairs created since its books were loaded: a new pair is announced on
        PAIRS_CHANNEL once committed, and its orders wait pending until then. Safe beside a batch in flight:
        that batch holds none of a new pair's orders, and the writer thread never reads `self.pairs`."""
        added = load_pairs(self.shard, self.pairs, self.adaptive_class)
        self.pairs.update(added)
        self._publish_snapshots(added)
        if added:
            log.info("pairs added", extra={"event": "pairs_added", "shard": self.shard,
                                           "pairs": [runtime.symbol for runtime in added.values()]})

    def _publish_snapshots(self, pairs: dict[int, PairRuntime]) -> None:
        if self.publisher is not None:
            for runtime in pairs.values():
                self.publisher.reset(runtime)

    # ---- one batch ----------------------------------------------------------------------------
    def process_batch(self) -> int:
        """One whole batch: takes the pending inbox of the shard (up to max_batch), executes it and commits;
        returns how many inbox entries and control commands it handled."""
        batch = self.prepare_batch(self.sessions[0])
        if batch is None:
            return 0
        self.commit_batch(batch)
        self.committed(batch)
        return batch.entries

    def prepare_batch(self, session: BatchSession, in_flight: Batch | None = None, limit: int | None = None,
                      control_limit: int | None = None) -> Batch | None:
        """Claims the pending inbox in a new transaction of `session` and runs it through the engines; the
        batch is ready to write, or None when nothing was pending. `in_flight` is the batch another session
        is committing meanwhile; `limit` and `control_limit` cap the inbox entries and control commands taken
        (by default max_batch and all). If anything fails the books are rebuilt from the database, which
        still holds the state before the batch."""
        self.last_claim, self.last_controls = [], []
        if self.stale:
            self.load()
        if not self.pairs:
            return None
        try:
            with session.cursor() as cursor:
                pair_ids = list(self.pairs)
                claimed_at = time.time()
                controls = claim_controls(cursor, pair_ids, control_limit)
                entries = claim_inbox(cursor, pair_ids, self.max_batch if limit is None else limit, in_flight)
                self.in_hand += len(entries) + len(controls)
                self.last_claim, self.last_controls = entries, controls
                if not entries and not controls:
                    session.rollback()          # ends the empty transaction and its snapshot
                    return None
                batch = Batch(timezone.now(), self.actor, entries=len(entries) + len(controls), session=session,
                              claimed_orders=[entry[2] for entry in entries if entry[1] == "place"],
                              claimed_requests=[entry[2] for entry in entries if entry[1] != "place"],
                              arrivals=[(entry[2], entry[3], entry[1], entry[12]) for entry in entries],
                              claimed_at=claimed_at)
                execute_claim(self.pairs, batch, controls, entries)
                self.health.count_breaker_trips(batch.breaker_trips)
                format_batch(batch, self.pairs, cursor)
        except Exception:
            self._fail(session)
            raise
        return batch

    def commit_batch(self, batch: Batch) -> None:
        """Writes the batch and commits its transaction. Touches nothing but the batch and its session, so
        the serving loop can run it in its writer thread while the engines compute the next batch."""
        try:
            write_batch(batch)
            batch.session.commit()
        except Exception:
            self._fail(batch.session)
            raise
        if batch.announcement:
            self._announce(batch)

    def _announce(self, batch: Batch) -> None:
        """The results NOTIFY of a committed batch. A wake-up, not the data: should it fail, the batch stands and
        the waiting requests find their results at their timeout (`exchange/inbox.py`)."""
        try:
            batch.session.announce(batch.announcement)
        except Exception as error:  # noqa: BLE001 - the batch is committed; only the wake-up is lost
            log.warning("results NOTIFY not sent", extra={"event": "notify_failed", "shard": self.shard,
                                                          "error": str(error)})

    def committed(self, batch: Batch) -> None:
        """A committed batch: its entries are no longer in hand, its figures are counted and its market data is
        published."""
        committed_at = time.time()
        if self.publisher is not None:
            self.publisher.publish(batch, committed_at)
        self.metrics.batch_committed(batch, self.pairs, committed_at)
        for pair_id, opened in batch.breaker_trips.items():
            runtime = self.pairs.get(pair_id)
            symbol = runtime.symbol if runtime is not None else str(pair_id)
            webhooks.notify("breaker_trip", f"Circuit breaker opened for {symbol}: its orders go to the legacy"
                            " book alone until it closes", {"pair": symbol, "times": opened, "shard": self.shard})
        self.in_hand -= batch.entries
        self.batches += 1
        self.commands += batch.entries
        log.debug("batch committed", extra={"event": "batch_committed", "shard": self.shard,
                                            "size": batch.entries})

    def publish_metrics_if_due(self) -> None:
        """The worker's metrics for the web's /metrics, with the figures read from the engines refreshed."""
        if self.metrics_publisher.due():
            self.metrics.refresh(self.pairs, resident_memory_bytes(), self.health.memory_limit)
            self.metrics_publisher.publish()

    def _fail(self, session: BatchSession) -> None:
        log.exception("batch failed; its inbox stays pending and the books are rebuilt from the database",
                      extra={"event": "batch_failed", "shard": self.shard})
        session.rollback()
        self.stale = True
        self.metrics.error("batch_failed")

    def close(self) -> None:
        """Closes the batch sessions (and so releases the shard), after publishing what is committed."""
        if self.publisher is not None:
            self.publisher.close()
        for session in self.sessions:
            session.close()
