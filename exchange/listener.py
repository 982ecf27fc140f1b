"""One LISTEN connection per web process, shared by all its requests.

Two things in a web process need to hear from PostgreSQL: a request waiting for its orders' results
(`?wait=`), and the caches of what changes only rarely (pairs, API tokens). A thread of the process listens on
the results channel, where the matching worker announces each batch per pair, and on the changes channel,
where triggers announce every committed change of a pair, a token or a user. Waiting requests sleep on an
event the thread sets; caches are emptied by the change notifications. No request LISTENs on a connection of
its own or keeps one busy while it waits.

Caches may be trusted only while the listener is connected: a notification sent while it was not would be
lost. `generation()` is None then, and the caches are bypassed until it has reconnected.
"""
from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

import psycopg2
from django.db import connections

from exchange.inbox import CHANGES_CHANNEL, PUBLISHED_CHANNEL, RESULTS_CHANNEL

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0
POLL_WHILE_DISCONNECTED_SECONDS = 0.05   # a waiting request looks again this often while nobody can wake it


class Watch:
    """A waiting request's interest in the results of some pairs: `wait` returns early when one of them has
    new results."""

    def __init__(self, listener: Listener, pair_ids: set[int]) -> None:
        self.listener = listener
        self.pair_ids = pair_ids
        self.woken = threading.Event()

    def __enter__(self) -> Watch:
        self.listener._add_watch(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.listener._remove_watch(self)

    def reset(self) -> None:
        """Forgets earlier wake-ups: call it before reading the state, so a result after the read wakes `wait`."""
        self.woken.clear()

    def wait(self, seconds: float) -> None:
        if self.listener.generation() is None:
            time.sleep(min(seconds, POLL_WHILE_DISCONNECTED_SECONDS))
        else:
            self.woken.wait(seconds)


class Listener:
    """The process's LISTEN thread; started on first use, in the process that uses it (so after a fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connected = False
        self._generation = 0
        self._results: dict[int, int] = defaultdict(int)      # pair id -> result announcements heard
        self._published: dict[int, int] = defaultdict(int)    # pair id -> market data publications heard
        self._watches: dict[int, set[Watch]] = defaultdict(set)

    def generation(self) -> int | None:
        """A number that changes whenever a cached thing may have changed; None while nothing may be cached."""
        self.start()
        return self._generation if self._connected else None

    def results_generation(self, pair_id: int) -> tuple[int, int] | None:
        """A number that changes whenever the pair's book may have changed (a batch of the worker, or any
        change the listener might have missed); None while nothing may be cached."""
        generation = self.generation()
        return None if generation is None else (generation, self._results[pair_id])

    def published_generation(self, pair_id: int) -> tuple[int, int] | None:
        """A number that changes whenever the worker has published the pair's market data again; None while
        nothing may be cached."""
        generation = self.generation()
        return None if generation is None else (generation, self._published[pair_id])

    def watching(self, pair_ids: Iterable[int]) -> Watch:
        self.start()
        return Watch(self, set(pair_ids))

    def start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid, self._connected = os.getpid(), False
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="exchange-listener", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stops the thread and closes its connection (tests drop their database afterwards)."""
        with self._lock:
            if self._pid != os.getpid() or self._thread is None:
                return
            self._stopping.set()
            self._thread.join(5)
            self._pid, self._thread, self._connected = None, None, False

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except (psycopg2.Error, OSError) as error:
                log.warning("listener connection lost; caches are bypassed until it is back",
                            extra={"event": "listener_reconnect", "error": str(error)})
            self._disconnected()
            self._stopping.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        database = connections["default"]
        pg = database.get_new_connection(database.get_connection_params())
        try:
            pg.autocommit = True
            with pg.cursor() as cursor:
                cursor.execute(f"LISTEN {RESULTS_CHANNEL}; LISTEN {CHANGES_CHANNEL}; LISTEN {PUBLISHED_CHANNEL}")
            with self._lock:
                self._connected = True       # nothing was cached while disconnected (see `_disconnected`)
            self._wake_all()                 # waiters that polled while disconnected look again now
            while not self._stopping.is_set():
                if select.select([pg], [], [], RECONNECT_SECONDS)[0]:
                    pg.poll()
                    notifies, pg.notifies[:] = list(pg.notifies), []
                    self._dispatch(notifies)
        finally:
            pg.close()

    def _dispatch(self, notifies: list) -> None:
        pairs = set()
        for notify in notifies:
            if notify.channel == CHANGES_CHANNEL:
                self._generation += 1
            elif notify.channel == PUBLISHED_CHANNEL:
                self._published[int(notify.payload)] += 1
            elif notify.payload.isdigit():
                pairs.add(int(notify.payload))
        for pair_id in pairs:
            self._results[pair_id] += 1
        with self._lock:
            woken = [watch for pair_id in pairs for watch in self._watches.get(pair_id, ())]
        for watch in woken:
            watch.woken.set()

    def _disconnected(self) -> None:
        with self._lock:
            self._connected = False
            self._generation += 1

    def _wake_all(self) -> None:
        with self._lock:
            woken = {watch for watches in self._watches.values() for watch in watches}
        for watch in woken:
            watch.woken.set()

    def _add_watch(self, watch: Watch) -> None:
        with self._lock:
            for pair_id in watch.pair_ids:
                self._watches[pair_id].add(watch)

    def _remove_watch(self, watch: Watch) -> None:
        with self._lock:
            for pair_id in watch.pair_ids:
                watches = self._watches.get(pair_id)
                if watches is not None:
                    watches.discard(watch)
                    if not watches:
                        del self._watches[pair_id]


listener = Listener()


Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class ChangeCache(Generic[Key, Value]):
    """A per-process cache of rarely changing rows, emptied by every change notification.

    An entry keeps the generation it was loaded under; the generation is read *before* the load, so a change
    committed during the load makes the entry stale at once. Missing rows (None) are not cached: a stream of
    made-up keys must not grow the cache. `generation_of(key)` says what an entry depends on (by default every
    change notification)."""

    def __init__(self, load: Callable[[Key], Value | None],
                 generation_of: Callable[[Key], object] = lambda key: listener.generation()) -> None:
        self.load = load
        self.generation_of = generation_of
        self.entries: dict[Key, tuple[object, Value]] = {}

    def get(self, key: Key) -> Value | None:
        generation = self.generation_of(key)
        if generation is None:
            return self.load(key)
        entry = self.entries.get(key)
        if entry is not None and entry[0] == generation:
            return entry[1]
        value = self.load(key)
        if value is not None:
            self.entries[key] = (generation, value)
        return value

    def clear(self) -> None:
        self.entries.clear()
