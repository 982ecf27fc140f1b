"""What operators see: one status object per pair (plan, engine, breaker, last minute's health), the same
for the API, the `migration_status` command and the monitoring scripts.

`current_percentage` is what the worker has applied (the engine's committed percentage), not what was asked:
after an emergency stop the guide's check `select(.current_percentage > 0)` lists a pair until its worker has
really gone back to the legacy book. What the control plane asked is `requested_percentage`, and
`pending_commands` counts the control commands the worker has not applied yet."""

from typing import Any

from django.db.models import Count, Max

from exchange.models import EngineCommand, EngineState, HealthSample, TradingPair
from migrations_admin.models import MigrationPlan


def migration_status() -> list[dict[str, Any]]:
    """One object per pair, by symbol. A pair shows its latest plan (live or finished) or `state: "none"`
    with the engine's percentage."""
    pairs = list(TradingPair.objects.order_by("symbol"))
    engines = {engine.pair_id: engine for engine in EngineState.objects.all()}
    plans = _latest_plans()
    health = _latest_health()
    pending = _pending_commands()
    return [_pair_status(pair, plans.get(pair.id), engines.get(pair.id) or EngineState(pair=pair),
                         health.get(pair.id, {}), pending.get(pair.id, 0)) for pair in pairs]


def breaker_status() -> list[dict[str, Any]]:
    """Each pair's circuit breaker as the worker last committed it."""
    engines = {engine.pair_id: engine for engine in EngineState.objects.all()}
    result = []
    for pair in TradingPair.objects.order_by("symbol"):
        engine = engines.get(pair.id) or EngineState(pair=pair)
        result.append({"pair": pair.symbol, "breaker_state": engine.breaker_state,
                       "breaker_trips": engine.breaker_trips, "mode": engine.mode, "percentage": engine.percentage,
                       "updated_at": engine.updated_at})
    return result


def _pair_status(pair: TradingPair, plan: MigrationPlan | None, engine: EngineState,
                 health: dict[str, HealthSample], pending_commands: int) -> dict[str, Any]:
    requested = plan.current_percentage if plan else engine.percentage
    return {
        "pair": pair.symbol,
        "state": plan.state if plan else "none",
        "mode": engine.mode,
        "current_percentage": engine.percentage,
        "requested_percentage": requested,
        "target_percentage": plan.target_percentage if plan else None,
        "pending_commands": pending_commands,
        "applied": pending_commands == 0 and engine.percentage == requested,
        "breaker_state": engine.breaker_state,
        "breaker_trips": engine.breaker_trips,
        "hold_reason": plan.hold_reason if plan else "",
        "hold_code": plan.hold_code if plan else "",
        "step_percentage": plan.migration_config.auto_step if plan else None,
        "health": {book: _health(health.get(book)) for book in HealthSample.Book.values},
        "last_step_at": plan.last_step_at if plan else None,
        "next_step_at": plan.next_step_at if plan else None,
    }


def _health(sample: HealthSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {"minute": sample.minute, "commands": sample.commands, "errors": sample.errors,
            "error_rate": sample.error_rate, "latency_p95_us": sample.latency_p95_us,
            "divergences": sample.divergences}


def _pending_commands() -> dict[int, int]:
    pending = EngineCommand.objects.filter(status=EngineCommand.Status.PENDING)
    return dict(pending.values_list("pair_id").annotate(count=Count("id")))


def _latest_plans() -> dict[int, MigrationPlan]:
    latest_ids = MigrationPlan.objects.values("pair_id").annotate(latest=Max("id")).values_list("latest", flat=True)
    return {plan.pair_id: plan for plan in MigrationPlan.objects.filter(id__in=list(latest_ids))}


def _latest_health() -> dict[int, dict[str, HealthSample]]:
    """Each pair's newest sample per book (the minute the worker is writing now, or its last one)."""
    samples = HealthSample.objects.order_by("pair_id", "book", "-minute").distinct("pair_id", "book")
    health: dict[int, dict[str, HealthSample]] = {}
    for sample in samples:
        health.setdefault(sample.pair_id, {})[sample.book] = sample
    return health
