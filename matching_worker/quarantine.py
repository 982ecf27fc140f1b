"""Quarantine: an inbox entry or control command that fails on its own is set apart, so that one bad entry
cannot hold up every pair of the shard.

A batch that fails for a reason its entries would repeat (bad data, a violated constraint, a bug in the
engine) would fail forever if simply retried. Its entries become *suspects*: they are retried in order in
batches halved at each failure, and an entry that fails alone is rejected with reason `internal_error` and
audited. The bad entry costs about log2(batch) failed batches, and the others execute in arrival order.
"""
from __future__ import annotations

import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

import psycopg2
from django.db import DatabaseError

from exchange.inbox import RESULTS_CHANNEL
from matching_worker.session import BatchSession

if TYPE_CHECKING:
    from matching_worker.metrics import WorkerMetrics
    from matching_worker.pairs import PairRuntime

log = logging.getLogger("matching_worker")

QUARANTINED = "internal_error"   # the reason of an inbox entry rejected because executing it fails on its own
QUARANTINE_LIMIT = 5             # entries set apart within QUARANTINE_WINDOW_S before the worker stops doing so
QUARANTINE_WINDOW_S = 600

REJECT_CONTROL = ("UPDATE exchange_enginecommand SET status = 'rejected', reason = %s, applied_at = now()"
                  " WHERE id = %s AND status = 'pending'")
REJECT_ORDER = ("UPDATE exchange_order SET status = 'rejected', reason = %s, updated_at = clock_timestamp(),"
                " processed_at = COALESCE(processed_at, clock_timestamp()) WHERE id = %s AND status = 'pending'")
REJECT_REQUEST = ("UPDATE exchange_orderrequest SET status = 'rejected', reason = %s,"
                  " processed_at = clock_timestamp() WHERE id = %s AND status = 'pending'")
AUDIT = "INSERT INTO exchange_auditlog (actor, action, target, details, created_at) VALUES (%s, %s, %s, %s, now())"


class QuarantineHalted(RuntimeError):
    """Too many entries failed on their own: a fault of the system, not of one entry."""


def repeats_with_its_data(error: Exception) -> bool:
    """Whether a failed batch would fail again with the same entries: bad data (SQLSTATE class 22), a violated
    constraint (23), a program limit (54), a trigger's RAISE (P0), a value the driver cannot send, or an
    error of our own Python. A lost connection, a restarting server, a cancelled statement or exhausted
    memory would not, and is simply retried."""
    if isinstance(error, psycopg2.Error):
        if error.pgcode is None:
            return isinstance(error, (psycopg2.DataError, psycopg2.ProgrammingError))
        return error.pgcode[:2] in ("22", "23", "54", "P0")
    return not isinstance(error, (DatabaseError, OSError, MemoryError, RecursionError, QuarantineHalted))


class Quarantine:
    """Sets entries apart, and stops doing so when it happens too often.

    Quarantine is for the odd bad entry. A fault of the system (a drifted sequence, a bug after a mode switch)
    would make every entry fail on its own and have them all rejected: past QUARANTINE_LIMIT within
    QUARANTINE_WINDOW_S the worker stops setting entries apart and the shard waits for an engineer (audited
    once, logged at every retry; /health shows the missing heartbeat)."""

    def __init__(self, shard: int, actor: str, metrics: WorkerMetrics) -> None:
        self.shard = shard
        self.actor = actor
        self.metrics = metrics
        self.set_apart_at: deque[float] = deque()    # when entries were set apart lately (monotonic)
        self.halted = False

    def set_apart_control(self, session: BatchSession, error: Exception, control: tuple,
                          pairs: dict[int, PairRuntime]) -> None:
        command_id, pair_id, kind = control[:3]
        self._set_apart(session, error, REJECT_CONTROL, command_id, f"command:{command_id}", "command_quarantined",
                        pair_id, {"pair": pairs[pair_id].symbol, "kind": kind})

    def set_apart_entry(self, session: BatchSession, error: Exception, entry: tuple,
                        pairs: dict[int, PairRuntime]) -> None:
        _, kind, row_id, pair_id = entry[:4]
        if kind == "place":
            statement, target, action = REJECT_ORDER, f"order:{row_id}", "order_quarantined"
        else:
            statement, target, action = REJECT_REQUEST, f"request:{row_id}", "request_quarantined"
        self._set_apart(session, error, statement, row_id, target, action, pair_id,
                        {"pair": pairs[pair_id].symbol, "kind": kind})

    def _set_apart(self, session: BatchSession, error: Exception, statement: str, row_id: int, target: str,
                   action: str, pair_id: int, about: dict) -> None:
        """Rejects the row (reason `internal_error`), audits it with the error for the engineers, and wakes any
        API request waiting for it. The books, rebuilt from the database before the next batch, never held it."""
        self._count_or_halt(session, error)
        details = {"error": describe(error), "sqlstate": getattr(error, "pgcode", None), **about}
        with session.cursor() as cursor:
            cursor.execute(statement, [QUARANTINED, row_id])
            cursor.execute(AUDIT, [self.actor, action, target, json.dumps(details)])
            cursor.execute("SELECT pg_notify(%s, %s)", [RESULTS_CHANNEL, str(pair_id)])
        session.commit()
        self.metrics.error("quarantined", about["pair"])
        log.error("set apart: it fails on its own", extra={
            "event": "entry_quarantined", "shard": self.shard, "target": target, **details})

    def _count_or_halt(self, session: BatchSession, error: Exception) -> None:
        now = time.monotonic()
        while self.set_apart_at and now - self.set_apart_at[0] > QUARANTINE_WINDOW_S:
            self.set_apart_at.popleft()
        if len(self.set_apart_at) >= QUARANTINE_LIMIT:
            self._halt(session, error)
        self.set_apart_at.append(now)

    def _halt(self, session: BatchSession, error: Exception) -> None:
        details = {"limit": QUARANTINE_LIMIT, "window_s": QUARANTINE_WINDOW_S, "error": describe(error)}
        log.critical("too many entries failed on their own: the shard waits for an engineer",
                     extra={"event": "quarantine_halted", "shard": self.shard, **details})
        if not self.halted:
            self.halted = True
            with session.cursor() as cursor:
                cursor.execute(AUDIT, [self.actor, "quarantine_halted", f"shard:{self.shard}", json.dumps(details)])
            session.commit()
        raise QuarantineHalted(f"more than {QUARANTINE_LIMIT} entries set apart in {QUARANTINE_WINDOW_S} s")


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]
