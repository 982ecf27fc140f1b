"""`ShardServer`: serves one shard until SIGTERM or SIGINT, pipelined over the worker's two batch sessions.

While the writer thread writes and commits batch N, the engines claim and compute batch N+1 in the other
session, so PostgreSQL and the engines work on two cores at once. The loop sleeps on `LISTEN exchange_inbox`
when there is nothing to do (never polling), starts serving a pair as soon as it is created, writes a
heartbeat and health samples, logs a performance report, and on a signal finishes the batch in hand. A lost
database is reconnected; a batch that fails with its data is handed to quarantine before the loop resumes.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from exchange.inbox import INBOX_CHANNEL, PAIRS_CHANNEL, PROFILE_CHANNEL
from exchange.serving.preparation import postgres_version, refuse_unsupported_postgres
from matching_worker.batch import Batch
from matching_worker.metrics import WorkerMetrics
from matching_worker.profiles import ProfileResponder
from matching_worker.publish import MarketPublisher
from matching_worker.quarantine import repeats_with_its_data
from matching_worker.worker import MatchingWorker

log = logging.getLogger("matching_worker")


def serve_shard(shard: int, max_batch: int, heartbeat_every: float) -> None:
    """The shard's worker process: its books, its market data publisher and its metrics, served until SIGTERM."""
    refuse_unsupported_postgres(postgres_version())
    metrics = WorkerMetrics()
    worker = MatchingWorker(shard, max_batch=max_batch, heartbeat_every=heartbeat_every,
                            publisher=MarketPublisher(metrics), metrics=metrics)
    ShardServer(worker).run()


class ShardServer:
    """Runs a `MatchingWorker` as its shard's long-lived process."""

    def __init__(self, worker: MatchingWorker) -> None:
        self.worker = worker
        self.suspects = 0            # entries to retry in halving batches after a failure their data would repeat
        self.started_at = timezone.now()
        self.report_every = settings.PERFORMANCE_REPORT_INTERVAL
        self._last_heartbeat = 0.0
        self._last_report = (time.monotonic(), 0)
        self.profiles = ProfileResponder(worker.shard)

    def run(self) -> None:
        """Serves until SIGTERM or SIGINT, finishing the batch in hand; woken by NOTIFY, never polling."""
        worker = self.worker
        wake_reader, wake_writer = os.pipe()
        os.set_blocking(wake_writer, False)
        signal.set_wakeup_fd(wake_writer)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request_stop)
        log.info("worker started", extra={"event": "worker_started", "shard": worker.shard})
        while not worker.stopping:
            try:
                self._serve(wake_reader)
            except Exception as error:
                # The database may be restarting: reconnect and resume. A failure the same entries would cause
                # again makes them suspects, retried in halving batches before the loop proper resumes.
                log.exception("batch or database error; reconnecting", extra={"event": "worker_reconnect"})
                self.suspects = worker.in_hand if repeats_with_its_data(error) else 0
                worker.in_hand = 0
                connection.close()
                time.sleep(1.0)
        self.heartbeat(stopping=True)
        worker.close()
        log.info("worker stopped", extra={"event": "worker_stopped", "shard": worker.shard,
                                          "batches": worker.batches, "commands": worker.commands})

    def _serve(self, wake_reader: int) -> None:
        """The loop proper. Batch N+1's claim leaves N's rows out by id and its engines already hold N's
        effects; it commits only after N did, and is rolled back with it if N fails."""
        worker = self.worker
        for session in worker.sessions:
            session.open(lock=True)
        with connection.cursor() as cursor:      # before the load: a pair committed during it is announced
            cursor.execute(f"LISTEN {INBOX_CHANNEL}; LISTEN {PAIRS_CHANNEL}; LISTEN {PROFILE_CHANNEL}")
        worker.load()
        isolate_suspects(worker, self.suspects)
        self.suspects = 0
        pg = connection.connection
        self.heartbeat()
        written_reader, written_writer = os.pipe()      # the writer thread's "batch done" wakes the select()
        os.set_blocking(written_writer, False)
        in_flight: tuple[Batch, Future] | None = None
        turn = 0
        claim_due = True                  # on start: whatever is already pending
        with ThreadPoolExecutor(1, thread_name_prefix="batch-writer") as writer:
            try:
                while not worker.stopping:
                    if claim_due:
                        self._take_notifies(pg)  # before the claim: a NOTIFY read after it is not lost
                        batch = worker.prepare_batch(worker.sessions[turn], in_flight[0] if in_flight else None)
                        # A full batch may have left more behind; otherwise the next claim waits for a NOTIFY.
                        claim_due = batch is not None and batch.entries >= worker.max_batch
                        if batch is not None:
                            if in_flight is not None:
                                self._settle(in_flight, batch)
                            future = writer.submit(worker.commit_batch, batch)
                            future.add_done_callback(lambda _: os.write(written_writer, b"."))
                            in_flight, turn = (batch, future), 1 - turn
                            self._heartbeat_if_due()
                            continue
                    # Heartbeat before looking at the notifies: its queries can read a NOTIFY off the socket into
                    # pg.notifies, and select() would then sleep a whole period on a wake-up already received.
                    self._heartbeat_if_due()
                    if pg.notifies:
                        claim_due = True
                        continue
                    readable, _, _ = select.select([pg, wake_reader, written_reader], [], [], worker.heartbeat_every)
                    if wake_reader in readable:
                        os.read(wake_reader, 512)
                    if written_reader in readable:
                        os.read(written_reader, 512)
                        if in_flight is not None and in_flight[1].done():
                            self._settle(in_flight, None)
                            in_flight = None
                    # A NOTIFY, or a quiet period: look again (the period is a safety net, not the mechanism).
                    claim_due = pg in readable or not readable
            finally:
                if in_flight is not None:        # the batch in hand is finished, even on the way out
                    self._settle(in_flight, None)
                os.close(written_reader)
                os.close(written_writer)

    def _take_notifies(self, pg) -> None:
        """Reads and clears the notifications received; a new pair of this shard is loaded on the spot, so the
        claim that follows already takes its orders."""
        pg.poll()
        received = list(pg.notifies)
        pg.notifies.clear()     # before loading: a NOTIFY read during the load's queries stays for the next look
        for notify in received:
            if notify.channel == PROFILE_CHANNEL:
                self.profiles.handle(notify.payload)
        if any(notify.channel == PAIRS_CHANNEL and notify.payload == str(self.worker.shard) for notify in received):
            self.worker.add_new_pairs()

    def _settle(self, in_flight: tuple[Batch, Future], following: Batch | None) -> None:
        """Waits for the batch being committed; if its commit failed, the batch computed on top of it is
        rolled back too and the error ends the loop (the books are rebuilt from the database)."""
        committed, future = in_flight
        try:
            future.result()
        except Exception:
            if following is not None:
                following.session.rollback()
            raise
        self.worker.committed(committed)

    # ---- signs of life --------------------------------------------------------------------------
    def heartbeat(self, stopping: bool = False) -> None:
        """The shard's sign of life, with how often it comes (the web judges it by that); the last one, on a
        clean stop, says the worker stopped, so the web refuses the shard's orders at once."""
        worker = self.worker
        # Without waiting for the disk: a sign of life need not survive a crash, and a WAL flush that stalls
        # (seen: 10 s, the batch's COMMIT waiting too) must not make a live worker look dead to the web, which
        # would then refuse its orders with 503. It still cannot be written while the loop itself is stuck.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(
                "INSERT INTO exchange_workerheartbeat (shard, pid, hostname, started_at, last_seen, batches, commands,"
                " interval_seconds, stopped_at) VALUES (%s, %s, %s, %s, now(), %s, %s, %s,"
                " CASE WHEN %s THEN now() END) ON CONFLICT (shard) DO UPDATE SET pid = EXCLUDED.pid,"
                " hostname = EXCLUDED.hostname, started_at = EXCLUDED.started_at, last_seen = now(),"
                " batches = EXCLUDED.batches, commands = EXCLUDED.commands,"
                " interval_seconds = EXCLUDED.interval_seconds, stopped_at = EXCLUDED.stopped_at",
                [worker.shard, os.getpid(), socket.gethostname(), self.started_at, worker.batches, worker.commands,
                 worker.heartbeat_every, stopping])
        self._last_heartbeat = time.monotonic()

    def _heartbeat_if_due(self) -> None:
        self.worker.health.flush_if_due()
        self.worker.publish_metrics_if_due()
        if time.monotonic() - self._last_heartbeat >= self.worker.heartbeat_every:
            self.heartbeat()
        self._report_if_due()

    def _report_if_due(self) -> None:
        """A performance report line every PERFORMANCE_REPORT_INTERVAL."""
        since, commands_then = self._last_report
        elapsed = time.monotonic() - since
        if elapsed < self.report_every:
            return
        worker = self.worker
        throughput = round((worker.commands - commands_then) / elapsed, 1)
        p95s = [p95 for runtime in worker.pairs.values() for health in runtime.engine.health.values()
                if (p95 := health.percentile_us(0.95)) is not None]
        latency = f"{max(p95s):g} us" if p95s else "none measured"
        figures = {runtime.symbol: {"mode": runtime.engine.mode, "percentage": runtime.engine.percentage,
                                    "breaker": runtime.engine.breaker.state,
                                    **{book: health.figures() for book, health in runtime.engine.health.items()}}
                   for runtime in worker.pairs.values()}
        # `pair_figures`, not `pairs`: other lines' `pairs` is a list of symbols, and Elasticsearch maps a field one
        # way only.
        log.info(f"performance report: throughput {throughput} commands/s, matching latency p95 {latency}", extra={
            "event": "performance_report", "shard": worker.shard, "batches": worker.batches,
            "commands_per_s": throughput, "pair_figures": figures})
        self._last_report = (time.monotonic(), worker.commands)

    def _request_stop(self, signum: int, frame: object) -> None:
        self.worker.stopping = True


def isolate_suspects(worker: MatchingWorker, suspects: int) -> None:
    """Retries the `suspects` oldest pending entries in order, in batches halved at each failure; an entry
    that fails alone is quarantined. Control commands ride along with every claim, here one at a time: when
    one entry fails beside a control, the control is tried alone first (limit 0), so an order is never
    blamed for a failing control command, nor one control for another."""
    limit = max(1, suspects // 2)
    while suspects > 0 and not worker.stopping:
        try:
            batch = worker.prepare_batch(worker.sessions[0], limit=limit, control_limit=1)
            if batch is not None:
                worker.commit_batch(batch)
        except Exception as error:
            worker.in_hand = 0
            if not repeats_with_its_data(error):
                raise
            if limit > 1 or (limit == 1 and worker.last_controls):
                limit //= 2
                continue
            if limit == 0:
                worker.quarantine.set_apart_control(worker.sessions[0], error, only(worker.last_controls),
                                                    worker.pairs)
            else:
                worker.quarantine.set_apart_entry(worker.sessions[0], error, only(worker.last_claim), worker.pairs)
            suspects -= 1
            limit = max(1, suspects // 2)
            continue
        if batch is None and limit > 0:
            break                           # nothing left pending
        if batch is not None:
            worker.committed(batch)
            suspects -= batch.entries
        limit = max(1, limit)


def only(claim: list[tuple]) -> tuple:
    if len(claim) != 1:
        raise RuntimeError(f"a failing batch that claimed {len(claim)} rows of a kind cannot be set apart")
    return claim[0]
