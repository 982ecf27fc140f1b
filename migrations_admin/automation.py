"""The control plane's timed work, run by celery beat through `migrations_admin.tasks`: read the worker's
health samples, ask `decisions` what to do, and do it through `actions`."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Q

from exchange.models import HealthSample, TradingPair
from migrations_admin import actions
from migrations_admin.decisions import (
    FINALIZE,
    HOLD,
    STEP,
    MinuteFigures,
    PlanPosition,
    minutes_for,
    rollback_decision,
    step_decision,
)
from migrations_admin.errors import MigrationError
from migrations_admin.models import OPERATOR_HOLD, MigrationPlan
from migrations_admin.services import migrations_enabled

logger = logging.getLogger(__name__)


def auto_migrate(now: datetime) -> dict[str, str]:
    """Steps, holds or finalizes every running or paused plan whose step is due and whose config has
    auto-migration on. Returns what it did per pair."""
    if not migrations_enabled():
        return {}
    due = [plan for plan in actions.live_plans().filter(Q(next_step_at__isnull=True) | Q(next_step_at__lte=now))
           .exclude(hold_code=OPERATOR_HOLD) if plan.migration_config.auto_migration]
    return {plan.pair.symbol: _auto_migrate_plan(plan, now) for plan in due}


def evaluate_rollbacks(now: datetime) -> dict[str, str]:
    """Rolls back every live or finalized plan whose adaptive book meets an automatic rollback trigger,
    recording the figures. Each plan is looked at once per its config's metrics interval. Returns the
    rollbacks' reasons."""
    rolled_back = {}
    for plan in actions.watched_plans():
        interval = timedelta(seconds=plan.migration_config.metrics_interval_s)
        if plan.last_checked_at and now - plan.last_checked_at < interval:
            continue
        reason = _evaluate_plan(plan, now)
        if reason:
            rolled_back[plan.pair.symbol] = reason
    return rolled_back


def _evaluate_plan(plan: MigrationPlan, now: datetime) -> str | None:
    config = plan.migration_config
    longest = max(config.rollback_error_rate_window_s, config.rollback_p95_window_s,
                  config.rollback_breaker_window_s, config.rollback_memory_window_s)
    decision = rollback_decision(config, adaptive_minutes(plan.pair, now, minutes_for(longest) + 1), now)
    if decision is None:
        actions.mark_checked(plan.id, now)
        return None
    done = _guarded(plan, actions.rollback, plan.pair.symbol, actions.ROLLBACK_EVALUATOR_ACTOR, decision.reason,
                    decision.figures, now=now)
    return decision.reason if done else None


def report_progress(now: datetime) -> list[str]:
    """Writes a progress report event (both books' figures since the last report) for every live plan whose
    report interval has passed. Returns the pairs reported."""
    reported = []
    for plan in actions.live_plans():
        interval = timedelta(seconds=plan.migration_config.report_interval_s)
        last = plan.last_report_at or plan.last_step_at or plan.created_at
        if now - last < interval:
            continue
        actions.record_report(plan.id, _report_figures(plan.pair, last, now), now)
        reported.append(plan.pair.symbol)
    return reported


def adaptive_minutes(pair: TradingPair, now: datetime, count: int) -> list[MinuteFigures]:
    """The adaptive book's samples of the last `count` minutes, oldest first."""
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=count - 1)
    samples = HealthSample.objects.filter(pair=pair, book=HealthSample.Book.ADAPTIVE, minute__gte=first)
    return [_figures(sample) for sample in samples.order_by("minute")]


def _auto_migrate_plan(plan: MigrationPlan, now: datetime) -> str:
    config = plan.migration_config
    engine = actions.engine_state(plan.pair)
    position = PlanPosition(plan.current_percentage, plan.target_percentage, plan.finalize_at_target,
                            engine.mode, engine.percentage)
    minutes = adaptive_minutes(plan.pair, now, minutes_for(config.step_interval_s))
    decision = step_decision(config, position, minutes, now)
    if decision.action == STEP:
        _guarded(plan, actions.step_up, plan.id, decision, now=now)
    elif decision.action == FINALIZE:
        _guarded(plan, actions.finalize, plan.pair.symbol, actions.AUTO_MIGRATION_ACTOR, reason=decision.reason,
                 figures=decision.figures, now=now)
    elif decision.action == HOLD:
        _guarded(plan, actions.hold, plan.id, decision, now=now)
    return f"{decision.action}: {decision.reason}"


def _guarded(plan: MigrationPlan, action: Callable[..., object], *args, **kwargs) -> bool:
    """Runs the action; False if it was refused. An operator may have changed the plan since it was read:
    that plan is skipped (and logged), the others go on."""
    try:
        action(*args, **kwargs)
    except MigrationError as error:
        logger.warning("migration action skipped", extra={"pair": plan.pair.symbol, "event": "migration_skipped",
                                                          "reason": error.message})
        return False
    return True


def _report_figures(pair: TradingPair, since: datetime, now: datetime) -> dict:
    first = since.replace(second=0, microsecond=0)
    figures: dict[str, object] = {"since": since.isoformat(), "until": now.isoformat()}
    for book in HealthSample.Book.values:
        samples = list(HealthSample.objects.filter(pair=pair, book=book, minute__gte=first))
        commands = sum(sample.commands for sample in samples)
        errors = sum(sample.errors for sample in samples)
        p95 = [sample.latency_p95_us for sample in samples if sample.latency_p95_us is not None]
        figures[book] = {"minutes": len(samples), "commands": commands, "errors": errors,
                         "error_rate": errors / commands if commands else 0.0,
                         "divergences": sum(sample.divergences for sample in samples),
                         "worst_latency_p95_us": max(p95) if p95 else None,
                         "breaker_trips": sum(sample.breaker_trips for sample in samples)}
    return figures


def _figures(sample: HealthSample) -> MinuteFigures:
    return MinuteFigures(minute=sample.minute, commands=sample.commands, errors=sample.errors,
                         divergences=sample.divergences, latency_p95_us=sample.latency_p95_us,
                         breaker_state=sample.breaker_state, breaker_trips=sample.breaker_trips,
                         memory_bytes=sample.memory_bytes, memory_limit_bytes=sample.memory_limit_bytes)
