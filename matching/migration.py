"""A pair's engine during the move from the legacy book to the adaptive book (ARCHITECTURE.md, "Migration").

Both books hold the same state; the percentage decides which one *executes* each order:

- a stable keyed hash of the order id puts it in a bucket 0-9999; below `percentage × 100`, with the
  breaker allowing it, the adaptive book is primary, otherwise the legacy book;
- the primary runs first (its time is the order's engine latency), the other book verifies right after;
- equal outputs: the primary's events stand. Different outputs (a *divergence*) or an exception in the
  adaptive book: the legacy book's events stand, the adaptive book is charged an error and a breaker
  failure, and is rebuilt from a snapshot of the legacy book. A bug in the new book never reaches a user
  while the legacy book runs.

Modes: `legacy_only` (one book), `migrating` (both), `adaptive_only` (one book, no net). Pure: the clock
that times the books is passed in, and the events never depend on it.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from matching.adaptive_book import AdaptiveOrderBook
from matching.book_health import BookHealth
from matching.circuit_breaker import BreakerSettings, CircuitBreaker
from matching.engine import OrderBook
from matching.legacy_book import LegacyOrderBook
from matching.orders import BookSnapshot, Command, Event, book_call, command_from_call

LEGACY_ONLY = "legacy_only"
MIGRATING = "migrating"
ADAPTIVE_ONLY = "adaptive_only"
BUCKETS = 10_000


class ControlCommandRefused(ValueError):
    """A control command that does not apply in the pair's current mode; the message says why."""


@dataclass(frozen=True, slots=True)
class RolloutSettings:
    """A pair's engine-side settings of a rollout to the adaptive book (its breaker, the adaptive book's latency
    limit, the routing hash's key), sent by the control plane with `start` and `set_percentage`."""

    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    adaptive_latency_limit_ms: float = 50.0
    hash_key: str = "adaptive-rollout"

    @classmethod
    def from_json(cls, data: dict) -> RolloutSettings:
        defaults = cls()
        breaker = BreakerSettings(
            failure_threshold=int(data.get("breaker_failure_threshold", defaults.breaker.failure_threshold)),
            failure_window=float(data.get("breaker_failure_window_s", defaults.breaker.failure_window)),
            recovery_timeout=float(data.get("breaker_recovery_timeout_s", defaults.breaker.recovery_timeout)),
            half_open_calls=int(data.get("breaker_half_open_calls", defaults.breaker.half_open_calls)))
        return cls(breaker, float(data.get("adaptive_latency_limit_ms", defaults.adaptive_latency_limit_ms)),
                   str(data.get("hash_key", defaults.hash_key)))

    def to_json(self) -> dict:
        return {"breaker_failure_threshold": self.breaker.failure_threshold,
                "breaker_failure_window_s": self.breaker.failure_window,
                "breaker_recovery_timeout_s": self.breaker.recovery_timeout,
                "breaker_half_open_calls": self.breaker.half_open_calls,
                "adaptive_latency_limit_ms": self.adaptive_latency_limit_ms, "hash_key": self.hash_key}


@dataclass(slots=True)
class Disagreement:
    """A command on which the adaptive book diverged from the legacy book or raised."""

    kind: str                      # "divergence" or "exception"
    sequence: int
    command: Command
    legacy_events: list
    adaptive_outcome: object       # its events, or the exception's text


class MigratingEngine:
    """One pair's engine in any of the three modes; the same command API as `PairEngine`."""

    def __init__(self, symbol: str, legacy: LegacyOrderBook | None, adaptive: AdaptiveOrderBook | None = None,
                 sequence: int = 0, percentage: int = 0, settings: RolloutSettings | None = None,
                 breaker: CircuitBreaker | None = None, adaptive_class: type[AdaptiveOrderBook] = AdaptiveOrderBook,
                 clock: Callable[[], int] = time.perf_counter_ns) -> None:
        if legacy is None and adaptive is None:
            raise ValueError("an engine needs at least one book")
        self.symbol = symbol
        self.legacy = legacy
        self.adaptive = adaptive
        self.sequence = sequence
        self.percentage = percentage
        self.settings = settings or RolloutSettings()
        self.breaker = breaker or CircuitBreaker(self.settings.breaker)
        self.adaptive_class = adaptive_class
        self.clock = clock
        self.health = {"legacy": BookHealth(), "adaptive": BookHealth()}
        self.disagreements: list[Disagreement] = []      # drained by the worker after each batch
        self.breaker_opened = 0                          # times it opened since last drained
        self._threshold = percentage * (BUCKETS // 100)
        self._hash_key = self.settings.hash_key.encode()

    @property
    def mode(self) -> str:
        if self.legacy is None:
            return ADAPTIVE_ONLY
        return LEGACY_ONLY if self.adaptive is None else MIGRATING

    @property
    def book(self) -> OrderBook:
        """The book of record: the legacy one while it runs."""
        if self.legacy is not None:
            return self.legacy
        return self._adaptive_book()

    def _adaptive_book(self) -> AdaptiveOrderBook:
        """The adaptive book where the legacy one is gone: an engine always holds at least one book."""
        if self.adaptive is None:
            raise RuntimeError(f"{self.symbol}'s engine holds no book")
        return self.adaptive

    # ---- order commands ----------------------------------------------------------------------
    def place(self, order_id: int, account: int, side: str, quantity: int, price: int | None, order_type: str,
              time_in_force: str, self_trade: str) -> tuple[int, list[Event]]:
        args = (order_id, account, side, quantity, price, order_type, time_in_force, self_trade)
        return self._run("place", args, order_id)

    def apply(self, command: Command) -> tuple[int, list[Event]]:
        verb, args = book_call(command)
        return self._run(verb, args, command.order_id)

    def _run(self, verb: str, args: tuple, order_id: int) -> tuple[int, list[Event]]:
        sequence = self.sequence
        self.sequence = sequence + 1
        if self.adaptive is None:
            return sequence, self._timed("legacy", getattr(self.legacy, verb), args)
        if self.legacy is None:
            return sequence, self._timed("adaptive", getattr(self.adaptive, verb), args)
        return sequence, self._run_both(verb, args, order_id, sequence)

    def _run_both(self, verb: str, args: tuple, order_id: int, sequence: int) -> list[Event]:
        now = self.clock() / 1e9
        adaptive_primary = self.bucket(order_id) < self._threshold and self.breaker.allows(now)
        if adaptive_primary:
            adaptive_outcome = self._try_adaptive(verb, args)
            legacy_events = self._timed("legacy", getattr(self.legacy, verb), args)
        else:
            legacy_events = self._timed("legacy", getattr(self.legacy, verb), args)
            adaptive_outcome = self._try_adaptive(verb, args)
        if adaptive_outcome == legacy_events:
            self.breaker.record_success()
            return adaptive_outcome if adaptive_primary else legacy_events
        self._disagree(verb, args, sequence, legacy_events, adaptive_outcome, now)
        return legacy_events

    def _try_adaptive(self, verb: str, args: tuple) -> object:
        health = self.health["adaptive"]
        started = self.clock()
        try:
            events = getattr(self.adaptive, verb)(*args)
        except Exception as error:  # noqa: BLE001 - any bug in the new book is contained: the legacy book decides
            health.record(self.clock() - started)
            return error
        elapsed = self.clock() - started
        health.record(elapsed)
        if elapsed > self.settings.adaptive_latency_limit_ms * 1e6:
            health.slow += 1
            self._breaker_failure(self.clock() / 1e9)
        return events

    def _disagree(self, verb: str, args: tuple, sequence: int, legacy_events: list, adaptive_outcome: object,
                  now: float) -> None:
        exception = isinstance(adaptive_outcome, Exception)
        health = self.health["adaptive"]
        health.errors += 1
        if not exception:
            health.divergences += 1
        self.disagreements.append(Disagreement(
            "exception" if exception else "divergence", sequence, command_from_call(verb, args), legacy_events,
            f"{type(adaptive_outcome).__name__}: {adaptive_outcome}" if exception else adaptive_outcome))
        self._breaker_failure(now)
        self.resync_adaptive()

    def _breaker_failure(self, now: float) -> None:
        if self.breaker.record_failure(now):
            self.breaker_opened += 1

    def _timed(self, book: str, method: Callable, args: tuple) -> list[Event]:
        started = self.clock()
        events = method(*args)
        self.health[book].record(self.clock() - started)
        return events

    def bucket(self, order_id: int) -> int:
        """The order's stable bucket 0-9999: keyed, so the rollout's slice of orders is not guessable."""
        digest = hashlib.blake2b(order_id.to_bytes(16, "big", signed=True), digest_size=8,
                                 key=self._hash_key).digest()
        return int.from_bytes(digest, "big") % BUCKETS

    # ---- control commands ----------------------------------------------------------------------
    def start(self, percentage: int, settings: RolloutSettings) -> None:
        """legacy_only → migrating: the adaptive book is built from a snapshot of the legacy book."""
        if self.mode != LEGACY_ONLY:
            raise ControlCommandRefused(f"{self.symbol} is already {self.mode}; start needs legacy_only")
        self._configure(settings)
        self.resync_adaptive()
        self.set_percentage(percentage)

    def set_percentage(self, percentage: int, settings: RolloutSettings | None = None) -> None:
        """migrating → migrating at `percentage`. From adaptive_only (a gradual rollback after finalize) the
        legacy book is first rebuilt from the adaptive one, which holds the pair's book: the net is back."""
        if self.mode == LEGACY_ONLY:
            raise ControlCommandRefused(f"{self.symbol} is {self.mode}; the percentage applies only while migrating")
        if not 0 <= percentage <= 100:
            raise ControlCommandRefused(f"percentage must be between 0 and 100, not {percentage}")
        if self.legacy is None:
            self.legacy = LegacyOrderBook.from_snapshot(self._adaptive_book().snapshot())
        if settings is not None:
            self._configure(settings)
        self.percentage = percentage
        self._threshold = percentage * (BUCKETS // 100)

    def finalize(self) -> None:
        """migrating at 100% → adaptive_only: the legacy book (the net) is dropped."""
        if self.mode != MIGRATING or self.percentage != 100:
            raise ControlCommandRefused(f"{self.symbol} is {self.mode} at {self.percentage}%; finalize needs"
                                        " migrating at 100%")
        self.legacy = None

    def rollback(self) -> None:
        """→ legacy_only, 0%. From adaptive_only the legacy book is rebuilt from the adaptive one."""
        if self.mode == LEGACY_ONLY:
            raise ControlCommandRefused(f"{self.symbol} is already legacy_only")
        if self.legacy is None:
            self.legacy = LegacyOrderBook.from_snapshot(self._adaptive_book().snapshot())
        self.adaptive = None
        self.percentage = 0
        self._threshold = 0

    def emergency_stop(self) -> None:
        """Like rollback, but never refused: an operator stopping everything must not get an error."""
        if self.mode != LEGACY_ONLY:
            self.rollback()

    def reset_breaker(self) -> None:
        self.breaker.reset()

    def resync_adaptive(self) -> None:
        """Rebuilds the adaptive book from the legacy one, so both hold the same book again."""
        if self.legacy is None:
            raise ControlCommandRefused(f"{self.symbol} is {self.mode}: there is no legacy book to resync from")
        self.adaptive = self.adaptive_class.from_snapshot(self.legacy.snapshot())

    def snapshot(self) -> BookSnapshot:
        return self.book.snapshot()

    def _configure(self, settings: RolloutSettings) -> None:
        self.settings = settings
        self._hash_key = settings.hash_key.encode()
        self.breaker.settings = settings.breaker
