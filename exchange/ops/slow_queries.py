"""The slowest recent SQL statements, for `GET /admin/slow-queries` (the deployment guide's "Analyze slow queries").

Two sources, the first that the database offers:

- **pg_stat_statements**, where the server loads it (`shared_preload_libraries`) and the extension exists in the
  database: every statement any client ran, normalised by the server, since its statistics were last reset.
  Its origin is the database role that ran it (the server does not keep the client's name).
- **The processes' own records** otherwise (a server without it, like a default Debian or a managed one):
  every process times the statements it runs itself, through a Django execute wrapper on its ORM connections
  (`install`) and a cursor class on the matching worker's batch sessions (`TimedCursor`). A statement is
  grouped by its text with the literals replaced by `?`, as pg_stat_statements does; calls, total and max time
  are kept since the process started. Every SLOW_QUERY_PUBLISH_SECONDS a process writes its slowest statements
  to Redis under `slow-queries:process:<process>` (kept an hour after its last write); the view merges every
  process's, and the origin is the process (its LOG_COMPONENT, host and pid).

Recording costs about 2 µs a statement (a clock read, a dict lookup, and a regular expression on statements not
seen before); a statement takes hundreds.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2.extensions
import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.backends.signals import connection_created

from exchange.stores import shared_redis

log = logging.getLogger(__name__)
KEY_PREFIX = "slow-queries:process:"
KEPT_SECONDS = 3600
PUBLISHED_STATEMENTS = 200
MAX_STATEMENTS = 2_000               # distinct statements a process keeps (then the quickest half is forgotten)
MAX_TEXT = 2_000                     # longer statements (bulk INSERTs run to megabytes) are known by their head
BULK_HEAD = 300

_LITERALS = re.compile(r"'(?:[^']|'')*'|(?<![\w$])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b|%\(\w+\)s|%s|\$\d+")
_LISTS = re.compile(r"\?(?:\s*,\s*\?)+")
_ROWS = re.compile(r"\(\?, \.\.\.\)(?:\s*,\s*\(\?, \.\.\.\))+")
_PARTIAL_TAIL = re.compile(r"\s*,?\s*\([^)]*$")      # a row cut off at the end of a bulk statement's head
_SPACE = re.compile(r"\s+")


def fingerprint(sql: str | bytes) -> str:
    """The statement with its literals and parameters as `?` and a list of them as `?, ...`."""
    # A bulk statement is known by its head: normalising all its values would cost more than it is worth.
    bulk = len(sql) > MAX_TEXT
    text = sql[:BULK_HEAD] if bulk else sql
    text = text.decode(errors="replace") if isinstance(text, bytes) else text
    text = _ROWS.sub("(?, ...), ...", _LISTS.sub("?, ...", _SPACE.sub(" ", _LITERALS.sub("?", text)).strip()))
    return _PARTIAL_TAIL.sub("", text) + " ..." if bulk else text


@dataclass(slots=True)
class StatementFigures:
    calls: int = 0
    total_s: float = 0.0
    max_s: float = 0.0

    def add(self, seconds: float) -> None:
        self.calls += 1
        self.total_s += seconds
        if seconds > self.max_s:
            self.max_s = seconds


class StatementRecorder:
    """One process's figures per statement, published to Redis at most every `every` seconds."""

    def __init__(self, component: str, every: float, store_factory: Callable[[], redis.Redis]) -> None:
        self.component, self.every, self.store_factory = component, every, store_factory
        self.started = time.time()
        self.statements: dict[str, StatementFigures] = {}
        self.forgotten = 0
        self._fingerprints: dict[str, str] = {}
        self._lock = threading.Lock()
        self._last_publish = time.monotonic()
        self._store: redis.Redis | None = None

    def record(self, sql: str | bytes, seconds: float) -> None:
        key = self._fingerprint(sql)
        with self._lock:
            figures = self.statements.get(key)
            if figures is None:
                if len(self.statements) >= MAX_STATEMENTS:
                    self._make_room()
                figures = self.statements[key] = StatementFigures()
            figures.add(seconds)
        if time.monotonic() - self._last_publish >= self.every:
            self.publish()

    @property
    def origin(self) -> str:
        """The process: read when used, as a Celery pool process is forked after this was made."""
        return f"{self.component}:{socket.gethostname()}:{os.getpid()}"

    def slowest(self, limit: int) -> list[dict]:
        """The statements by mean time, slowest first."""
        with self._lock:
            items = [(text, StatementFigures(f.calls, f.total_s, f.max_s)) for text, f in self.statements.items()]
        items.sort(key=lambda item: item[1].total_s / item[1].calls, reverse=True)
        return [_as_row(text, figures, self.origin) for text, figures in items[:limit]]

    def publish(self) -> None:
        self._last_publish = time.monotonic()
        snapshot = {"origin": self.origin, "since": self.started, "published_at": time.time(),
                    "forgotten": self.forgotten, "statements": self.slowest(PUBLISHED_STATEMENTS)}
        try:
            self._store = self._store or self.store_factory()
            self._store.set(KEY_PREFIX + self.origin, json.dumps(snapshot), ex=KEPT_SECONDS)
        except redis.RedisError as error:
            log.warning("slow queries not published", extra={"event": "slow_queries_publish_failed",
                                                            "error": str(error)})

    def _make_room(self) -> None:
        """Forgets the half of the statements that took the least time in all (amortised: once per
        MAX_STATEMENTS / 2 new statements), so a long-lived process keeps noticing new slow ones."""
        kept = sorted(self.statements.items(), key=lambda item: item[1].total_s, reverse=True)[:MAX_STATEMENTS // 2]
        self.forgotten += len(self.statements) - len(kept)
        self.statements = dict(kept)

    def _fingerprint(self, sql: str | bytes) -> str:
        if isinstance(sql, bytes) or len(sql) > MAX_TEXT:
            return fingerprint(sql)          # bulk statements: too long (and too many) to remember
        known = self._fingerprints.get(sql)
        if known is None:
            known = fingerprint(sql)
            if len(self._fingerprints) < MAX_STATEMENTS * 4:
                self._fingerprints[sql] = known
        return known

    # Django's execute wrapper protocol: time the statement, whatever it raises.
    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.record(sql, time.perf_counter() - started)


def _as_row(text: str, figures: StatementFigures, origin: str) -> dict:
    return {"query": text, "calls": figures.calls, "mean_ms": round(figures.total_s / figures.calls * 1000, 3),
            "max_ms": round(figures.max_s * 1000, 3), "total_ms": round(figures.total_s * 1000, 3),
            "origin": [origin]}


recorder = StatementRecorder(settings.LOG_COMPONENT, settings.SLOW_QUERY_PUBLISH_SECONDS, shared_redis)


def _install_on(sender, connection, **kwargs) -> None:
    if recorder not in connection.execute_wrappers:
        connection.execute_wrappers.append(recorder)


def install() -> None:
    """Every ORM connection this process opens from now on is timed (called once, from the app's ready())."""
    connection_created.connect(_install_on, dispatch_uid="exchange.ops.slow_queries")


class TimedCursor(psycopg2.extensions.cursor):
    """A psycopg2 cursor whose statements the process's recorder times (the worker's batch sessions)."""

    def execute(self, query, vars=None):
        started = time.perf_counter()
        try:
            return super().execute(query, vars)
        finally:
            recorder.record(query, time.perf_counter() - started)


# ---- the view's answer ------------------------------------------------------------------------------------
PG_STAT_STATEMENTS = """
    SELECT s.query, s.calls, s.mean_exec_time, s.max_exec_time, s.total_exec_time, r.rolname
      FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
     WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.calls >= %s
     ORDER BY s.mean_exec_time DESC LIMIT %s"""


def slowest_statements(limit: int, min_calls: int = 1) -> dict:
    """The answer of `/admin/slow-queries`: the source, and the `limit` statements with the highest mean time."""
    statements = _from_pg_stat_statements(limit, min_calls) if settings.SLOW_QUERIES_SOURCE == "auto" else None
    if statements is not None:
        return {"source": "pg_stat_statements", "statements": statements}
    recorder.publish()                          # this process's newest figures, in the merge below
    return {"source": "processes", "statements": _from_processes(limit, min_calls)}


def _from_pg_stat_statements(limit: int, min_calls: int) -> list[dict] | None:
    """None when the server does not offer pg_stat_statements (not loaded, or the extension not created)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
            if cursor.fetchone() is None:
                return None
            with transaction.atomic():      # a savepoint: a refusal leaves the caller's transaction usable
                cursor.execute(PG_STAT_STATEMENTS, [min_calls, limit])
                rows = cursor.fetchall()
    except DatabaseError:
        return None                             # created but not in shared_preload_libraries
    return [{"query": query, "calls": calls, "mean_ms": round(mean, 3), "max_ms": round(worst, 3),
             "total_ms": round(total, 3), "origin": [f"role:{role}"]}
            for query, calls, mean, worst, total, role in rows]


def _from_processes(limit: int, min_calls: int) -> list[dict]:
    store = shared_redis()
    keys = sorted(store.scan_iter(match=KEY_PREFIX + "*", count=1000))
    merged: dict[str, dict] = {}
    for raw in store.mget(keys) if keys else []:
        if raw is None:
            continue
        for row in json.loads(raw)["statements"]:
            _merge(merged, row)
    rows = [row for row in merged.values() if row["calls"] >= min_calls]
    rows.sort(key=lambda row: row["mean_ms"], reverse=True)
    return rows[:limit]


def _merge(merged: dict[str, dict], row: dict) -> None:
    kept = merged.get(row["query"])
    if kept is None:
        merged[row["query"]] = dict(row)
        return
    kept["calls"] += row["calls"]
    kept["total_ms"] = round(kept["total_ms"] + row["total_ms"], 3)
    kept["mean_ms"] = round(kept["total_ms"] / kept["calls"], 3)
    kept["max_ms"] = max(kept["max_ms"], row["max_ms"])
    kept["origin"] = sorted(set(kept["origin"]) | set(row["origin"]))
