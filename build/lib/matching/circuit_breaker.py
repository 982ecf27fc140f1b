"""A pair's circuit breaker on the adaptive book: closed → open after N failures within a window;
open → half-open after a cool-down; half-open closes after enough successes and reopens on a failure.

Pure: the caller passes the time (seconds, any monotonic origin), so tests need no clock.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Defaults are the production preset's: 3 failures, 3 minutes' cool-down, 5 trial calls."""

    failure_threshold: int = 3
    failure_window: float = 60.0
    recovery_timeout: float = 180.0
    half_open_calls: int = 5

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_calls < 1:
            raise ValueError("failure_threshold and half_open_calls must be at least 1")
        if self.failure_window <= 0 or self.recovery_timeout < 0:
            raise ValueError("failure_window must be positive and recovery_timeout not negative")


class CircuitBreaker:
    """Decides whether the adaptive book may execute an order; counts how often it opened (`trips`)."""

    def __init__(self, settings: BreakerSettings, state: str = CLOSED, trips: int = 0, now: float = 0.0) -> None:
        self.settings = settings
        self.state = state
        self.trips = trips
        self._opened_at = now
        self._failures: deque[float] = deque()
        self._trial_calls = 0
        self._trial_successes = 0

    def allows(self, now: float) -> bool:
        """May the adaptive book be primary for the next order? Moves open → half-open after the cool-down."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if now - self._opened_at < self.settings.recovery_timeout:
                return False
            self.state = HALF_OPEN
            self._trial_calls = self._trial_successes = 0
        if self._trial_calls >= self.settings.half_open_calls:
            return False
        self._trial_calls += 1
        return True

    def record_success(self) -> None:
        if self.state != HALF_OPEN:
            return
        self._trial_successes += 1
        if self._trial_successes >= self.settings.half_open_calls:
            self.state = CLOSED
            self._failures.clear()

    def record_failure(self, now: float) -> bool:
        """Counts a failure; returns True when this failure opened the breaker."""
        if self.state == OPEN:
            return False
        if self.state == HALF_OPEN:
            return self._open(now)
        failures = self._failures
        failures.append(now)
        while failures and now - failures[0] > self.settings.failure_window:
            failures.popleft()
        if len(failures) >= self.settings.failure_threshold:
            return self._open(now)
        return False

    def reset(self) -> None:
        """An operator's reset: closed, failures forgotten (trips stay: they are history)."""
        self.state = CLOSED
        self._failures.clear()

    def _open(self, now: float) -> bool:
        self.state = OPEN
        self._opened_at = now
        self._failures.clear()
        self.trips += 1
        return True
