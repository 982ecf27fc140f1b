"""What the automation should do with a plan, decided from its config and the worker's per-minute figures.

Pure: no Django, no clock (the caller passes `now`), so every trigger is tested without a database. The
worker keeps one HealthSample per pair, book and minute; a trigger over "N consecutive minutes" needs the
newest N minutes to be contiguous, the newest being the current or the previous minute, and every one of
them over the threshold. A window of W seconds spans ceil(W / 60) minutes (at least one), so tests can
configure windows of seconds.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from migrations_admin.config import MigrationConfig

SAMPLE_SECONDS = 60
ONE_MINUTE = timedelta(seconds=SAMPLE_SECONDS)


@dataclass(frozen=True)
class MinuteFigures:
    """One minute of the adaptive book of one pair, as the worker sampled it."""

    minute: datetime
    commands: int = 0
    errors: int = 0
    divergences: int = 0
    latency_p95_us: float | None = None
    breaker_state: str = "closed"
    breaker_trips: int = 0
    memory_bytes: int = 0
    memory_limit_bytes: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.commands if self.commands else 0.0

    @property
    def memory_fraction(self) -> float:
        return self.memory_bytes / self.memory_limit_bytes if self.memory_limit_bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"minute": self.minute.isoformat(), "commands": self.commands, "errors": self.errors,
                "error_rate": round(self.error_rate, 6), "divergences": self.divergences,
                "latency_p95_us": self.latency_p95_us, "breaker_state": self.breaker_state,
                "breaker_trips": self.breaker_trips, "memory_bytes": self.memory_bytes,
                "memory_limit_bytes": self.memory_limit_bytes}


@dataclass(frozen=True)
class Decision:
    """`action` is one of the constants below; `code` names the reason for machines, `reason` for people."""

    action: str
    code: str
    reason: str
    percentage: int | None = None
    figures: dict[str, Any] = field(default_factory=dict)


STEP, HOLD, FINALIZE, ROLLBACK = "step", "hold", "finalize", "rollback"


@dataclass(frozen=True)
class PlanPosition:
    """Where a running plan is, and where the worker is (what it last applied)."""

    current_percentage: int
    target_percentage: int
    finalize_at_target: bool
    engine_mode: str
    engine_percentage: int


def minutes_for(window_s: float) -> int:
    """How many per-minute samples a window of `window_s` seconds spans."""
    return max(1, math.ceil(window_s / SAMPLE_SECONDS))


def rollback_decision(config: MigrationConfig, minutes: Sequence[MinuteFigures], now: datetime) -> Decision | None:
    """A ROLLBACK decision if any of the four automatic rollback triggers holds, else None."""
    ordered = sorted(minutes, key=lambda figures: figures.minute)
    for trigger in (_error_rate_trigger, _latency_trigger, _breaker_trigger, _memory_trigger):
        decision = trigger(config, ordered, now)
        if decision is not None:
            return decision
    return None


def step_decision(config: MigrationConfig, position: PlanPosition, minutes: Sequence[MinuteFigures],
                  now: datetime) -> Decision:
    """STEP (with the new percentage), FINALIZE or HOLD (with why) for a plan whose step is due."""
    if position.engine_mode != "migrating" or position.engine_percentage != position.current_percentage:
        return Decision(HOLD, "worker_behind", f"waiting for the worker to apply {position.current_percentage}% "
                        f"(engine: {position.engine_mode} at {position.engine_percentage}%)")
    unhealthy = _health_problem(config, minutes, now)
    if unhealthy is not None:
        return unhealthy
    if position.current_percentage >= position.target_percentage:
        if position.finalize_at_target and position.current_percentage == 100:
            return Decision(FINALIZE, "finalize", "at 100% and healthy: finalizing")
        return Decision(HOLD, "at_target", f"at the target {position.target_percentage}%")
    new_percentage = min(position.current_percentage + config.auto_step, position.target_percentage,
                         config.max_percentage)
    if new_percentage <= position.current_percentage:
        return Decision(HOLD, "at_max", f"at the configured maximum {config.max_percentage}%")
    return Decision(STEP, "healthy", f"healthy: {position.current_percentage}% -> {new_percentage}%",
                    percentage=new_percentage)


def _health_problem(config: MigrationConfig, minutes: Sequence[MinuteFigures], now: datetime) -> Decision | None:
    """A HOLD if the adaptive book's figures over the last step interval are not good enough to step."""
    recent = _since(minutes, now, minutes_for(config.step_interval_s))
    if not recent:
        return Decision(HOLD, "no_health", "no recent health figures from the worker")
    figures = {"minutes": [item.as_dict() for item in recent]}
    latest = max(recent, key=lambda item: item.minute)
    if latest.breaker_state != "closed":
        return Decision(HOLD, "breaker_not_closed", f"the breaker is {latest.breaker_state}", figures=figures)
    commands = sum(item.commands for item in recent)
    errors = sum(item.errors for item in recent)
    error_rate = errors / commands if commands else 0.0
    if error_rate >= config.safety_error_threshold:
        return Decision(HOLD, "error_rate", f"adaptive error rate {error_rate:.2%} is not below the threshold "
                        f"{config.safety_error_threshold:.2%}", figures={**figures, "error_rate": error_rate})
    return None


def _error_rate_trigger(config: MigrationConfig, minutes: list[MinuteFigures], now: datetime) -> Decision | None:
    count = minutes_for(config.rollback_error_rate_window_s)
    tail = _consecutive_tail(minutes, count, now)
    if tail is None or not all(item.error_rate > config.rollback_error_rate for item in tail):
        return None
    return _rollback("error_rate", f"adaptive error rate above {config.rollback_error_rate:.2%} for {count} "
                     f"consecutive minutes", tail, threshold=config.rollback_error_rate)


def _latency_trigger(config: MigrationConfig, minutes: list[MinuteFigures], now: datetime) -> Decision | None:
    count = minutes_for(config.rollback_p95_window_s)
    tail = _consecutive_tail(minutes, count, now)
    limit_us = config.rollback_p95_ms * 1000
    if tail is None or not all(item.latency_p95_us is not None and item.latency_p95_us > limit_us for item in tail):
        return None
    return _rollback("latency_p95", f"adaptive P95 latency above {config.rollback_p95_ms:g} ms for {count} "
                     f"consecutive minutes", tail, threshold_us=limit_us)


def _breaker_trigger(config: MigrationConfig, minutes: list[MinuteFigures], now: datetime) -> Decision | None:
    window = _since(minutes, now, minutes_for(config.rollback_breaker_window_s))
    trips = sum(item.breaker_trips for item in window)
    if trips <= config.rollback_breaker_trips:
        return None
    return _rollback("breaker_trips", f"the breaker opened {trips} times in {config.rollback_breaker_window_s:g} s "
                     f"(more than {config.rollback_breaker_trips})", window, trips=trips)


def _memory_trigger(config: MigrationConfig, minutes: list[MinuteFigures], now: datetime) -> Decision | None:
    count = minutes_for(config.rollback_memory_window_s)
    tail = _consecutive_tail(minutes, count, now)
    if tail is None or not all(item.memory_fraction > config.rollback_memory_fraction for item in tail):
        return None
    return _rollback("memory", f"worker memory above {config.rollback_memory_fraction:.0%} of its limit for "
                     f"{count} consecutive minutes", tail, threshold=config.rollback_memory_fraction)


def _rollback(code: str, reason: str, minutes: Sequence[MinuteFigures], **figures: Any) -> Decision:
    return Decision(ROLLBACK, code, reason, percentage=0,
                    figures={"trigger": code, **figures, "minutes": [item.as_dict() for item in minutes]})


def _current_minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def _since(minutes: Sequence[MinuteFigures], now: datetime, count: int) -> list[MinuteFigures]:
    """The samples of the last `count` minutes, the current one included."""
    first = _current_minute(now) - ONE_MINUTE * (count - 1)
    return [item for item in minutes if item.minute >= first]


def _consecutive_tail(minutes: list[MinuteFigures], count: int, now: datetime) -> list[MinuteFigures] | None:
    """The newest `count` samples if they are consecutive minutes and the newest is current (this minute or
    the previous one: the worker may not have written this minute yet); otherwise None."""
    if len(minutes) < count:
        return None
    tail = minutes[-count:]
    if tail[-1].minute < _current_minute(now) - ONE_MINUTE:
        return None
    for earlier, later in zip(tail, tail[1:], strict=False):
        if later.minute - earlier.minute != ONE_MINUTE:
            return None
    return tail
