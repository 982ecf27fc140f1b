"""Every change to migration plans and pairs' engines: `check_*` validates, `do_*`-style functions change.

Views, management commands, celery tasks and the admin call these and nothing else writes plans or events.
Each change is one transaction that holds the pair's row lock, updates the plan, inserts the EngineCommand
for the worker with `pg_notify('exchange_inbox', '<shard>')`, and records a MigrationEvent and an AuditLog.

Percentage bounds: 0..the plan's `max_percentage`. The safety max step limits automatic steps only: an
operator who asks for a percentage (API or command line) is deliberately choosing it, as the deployment
guide's own rollout and rollback loops do with steps of 15 and 25 points.
"""

import logging
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from exchange.inbox import INBOX_CHANNEL, notify
from exchange.models import AuditLog, EngineCommand, EngineState, TradingPair
from exchange.ops import webhooks
from migrations_admin.config import MigrationConfig, preset
from migrations_admin.decisions import Decision
from migrations_admin.errors import InvalidPercentage, MigrationError, MigrationsDisabled, PlanStateError, UnknownPair
from migrations_admin.models import LIVE_STATES, MigrationEvent, MigrationPlan
from migrations_admin.services import effective_config, migrations_enabled

log = logging.getLogger(__name__)
# What an operator must notice: the others are the migration's ordinary course.
WARNING_KINDS = frozenset({MigrationEvent.Kind.ROLLBACK, MigrationEvent.Kind.EMERGENCY_STOP,
                           MigrationEvent.Kind.RESET_BREAKER})

AUTO_MIGRATION_ACTOR = "celery:auto-migration"
ROLLBACK_EVALUATOR_ACTOR = "celery:rollback-evaluator"
AUTOMATIC_ACTOR_PREFIX = "celery:"
Kind = EngineCommand.Kind


def check_pair(symbol: str, *, status_code: int | None = None) -> TradingPair:
    """The pair, its row locked for the rest of the transaction: changes to one pair are serialised."""
    pair = TradingPair.objects.select_for_update().filter(symbol=str(symbol).upper()).first()
    if pair is None:
        raise UnknownPair(symbol, status_code=status_code)
    return pair


def check_enabled() -> None:
    if not migrations_enabled():
        raise MigrationsDisabled()


def check_percentage(config: MigrationConfig, percentage: int, field: str) -> None:
    if not 0 <= percentage <= config.max_percentage:
        raise InvalidPercentage(f"{field} must be between 0 and {config.max_percentage} (the configured maximum), "
                                f"not {percentage}", field=field)


def check_step(config: MigrationConfig, current: int, percentage: int, actor: str) -> None:
    """Automatic actors may not move up by more than the safety max step; operators may (see the module)."""
    if actor.startswith(AUTOMATIC_ACTOR_PREFIX) and percentage - current > config.safety_max_step:
        raise MigrationError(f"a step from {current}% to {percentage}% is larger than the safety max step "
                             f"{config.safety_max_step}", code="step_too_large", field="percentage")


def check_live_plan(pair: TradingPair) -> MigrationPlan:
    plan = _live_plan(pair)
    if plan is None:
        raise PlanStateError(f"{pair.symbol} has no running migration; start one first", code="no_live_plan")
    return plan


def check_can_start(pair: TradingPair) -> None:
    if _live_plan(pair) is not None:
        raise PlanStateError(f"{pair.symbol} already has a migration in progress", code="migration_in_progress")
    mode = engine_state(pair).mode
    if mode != EngineState.Mode.LEGACY_ONLY:
        raise PlanStateError(f"the engine of {pair.symbol} is {mode}, not legacy_only; roll it back first",
                             code="engine_not_legacy")


@transaction.atomic
def start_migration(symbol: str, target_percentage: int, actor: str, *, finalize_at_target: bool = False,
                    preset_name: str | None = None, now: datetime | None = None) -> MigrationPlan:
    """A running plan toward `target_percentage`: at the config's initial percentage (never above the
    target), or at 0% (shadow mode: both books run and are compared, the adaptive one executes nothing)
    when the target is 0. The plan keeps the pair's configuration, or the named preset's. Sends `start`."""
    now = now or timezone.now()
    pair = check_pair(symbol)
    check_enabled()
    config = preset(preset_name) if preset_name else effective_config(pair)
    check_percentage(config, target_percentage, "target_percentage")
    check_can_start(pair)
    initial = min(config.initial_percentage, target_percentage)
    plan = MigrationPlan(pair=pair, target_percentage=target_percentage, current_percentage=initial,
                         finalize_at_target=finalize_at_target, config=config.to_dict(), actor=actor)
    plan.begin(now)
    plan.save()
    reason = "shadow mode" if initial == 0 else f"start at {initial}% toward {target_percentage}%"
    _command(pair, Kind.START, actor, reason, percentage=initial, settings=config.to_engine_settings())
    _record(plan, MigrationEvent.Kind.START, actor, 0, initial, reason, {"config": config.to_dict()})
    return plan


@transaction.atomic
def set_percentage(symbol: str, percentage: int, actor: str, *, now: datetime | None = None) -> MigrationPlan:
    """Moves the pair's live plan to `percentage`, which also becomes its target. Sends `set_percentage`.

    A finalized pair (adaptive book alone) gets a new plan at 100% first, so the deployment guide's gradual
    rollback (75, 50, 25, 0%) works on it: the worker rebuilds the legacy book from the adaptive one. Lowering
    the percentage is a rollback step, allowed with migrations switched off; raising it is not."""
    now = now or timezone.now()
    pair = check_pair(symbol)
    plan = _live_plan(pair) or _reopen_finalized(pair, actor, now)
    if percentage > plan.current_percentage:
        check_enabled()
    config = plan.migration_config
    check_percentage(config, percentage, "percentage")
    check_step(config, plan.current_percentage, percentage, actor)
    before = plan.current_percentage
    plan.set_percentage(percentage, now)
    plan.save()
    reason = f"{before}% -> {percentage}%"
    _command(pair, Kind.SET_PERCENTAGE, actor, reason, percentage=percentage, settings=config.to_engine_settings())
    _record(plan, MigrationEvent.Kind.SET_PERCENTAGE, actor, before, percentage, reason)
    return plan


@transaction.atomic
def step_up(plan_id: int, decision: Decision, *, now: datetime | None = None) -> MigrationPlan:
    """An automatic step of a plan to `decision.percentage`, if the plan has not moved since it was read."""
    now = now or timezone.now()
    if decision.percentage is None:
        raise PlanStateError(f"a step needs a percentage: {decision.reason}")
    plan = _locked_plan(plan_id)
    config = plan.migration_config
    check_percentage(config, decision.percentage, "percentage")
    check_step(config, plan.current_percentage, decision.percentage, AUTO_MIGRATION_ACTOR)
    before = plan.current_percentage
    plan.step_up(decision.percentage, now)
    plan.save()
    _command(plan.pair, Kind.SET_PERCENTAGE, AUTO_MIGRATION_ACTOR, decision.reason, percentage=decision.percentage,
             settings=config.to_engine_settings())
    _record(plan, MigrationEvent.Kind.STEP, AUTO_MIGRATION_ACTOR, before, decision.percentage, decision.reason,
            decision.figures)
    return plan


@transaction.atomic
def hold(plan_id: int, decision: Decision, *, now: datetime | None = None) -> MigrationPlan:
    """Auto-migration does not step; the plan is paused until the cooldown has passed. A reason is recorded
    when it differs from the last one (a plan held for an hour records one event, not one per tick)."""
    now = now or timezone.now()
    plan = _locked_plan(plan_id)
    if plan.hold(decision.code, decision.reason, now):
        _record(plan, MigrationEvent.Kind.HOLD, AUTO_MIGRATION_ACTOR, plan.current_percentage,
                plan.current_percentage, decision.reason, {"code": decision.code, **decision.figures})
    plan.save()
    return plan


@transaction.atomic
def pause(symbol: str, actor: str, *, now: datetime | None = None) -> MigrationPlan:
    """Holds the pair's live plan at its percentage: no automatic step until an operator resumes it (the
    rollback triggers still watch it). The engine is not told: its percentage does not change."""
    now = now or timezone.now()
    pair = check_pair(symbol)
    plan = check_live_plan(pair)
    plan.pause(now)
    plan.save()
    _record(plan, MigrationEvent.Kind.PAUSE, actor, plan.current_percentage, plan.current_percentage,
            "paused by an operator")
    return plan


@transaction.atomic
def resume(symbol: str, actor: str, *, now: datetime | None = None) -> MigrationPlan:
    """Auto-migration takes a plan an operator paused up again."""
    now = now or timezone.now()
    pair = check_pair(symbol)
    check_enabled()
    plan = check_live_plan(pair)
    plan.resume(now)
    plan.save()
    _record(plan, MigrationEvent.Kind.RESUME, actor, plan.current_percentage, plan.current_percentage,
            "resumed by an operator")
    return plan


@transaction.atomic
def finalize(symbol: str, actor: str, *, reason: str = "", figures: dict | None = None,
             now: datetime | None = None) -> MigrationPlan:
    """Drops the legacy book of a plan at 100%: the pair runs adaptive only. Sends `finalize`."""
    now = now or timezone.now()
    pair = check_pair(symbol)
    plan = check_live_plan(pair)
    plan.complete(now)
    plan.save()
    reason = reason or "finalized at 100%"
    _command(pair, Kind.FINALIZE, actor, reason, percentage=100)
    _record(plan, MigrationEvent.Kind.FINALIZE, actor, 100, 100, reason, figures or {})
    _tell("migration_finished", f"Migration of {pair.symbol} finished: the adaptive book alone serves it",
          {"pair": pair.symbol, "plan": plan.id, "actor": actor, "reason": reason})
    return plan


@transaction.atomic
def rollback(symbol: str, actor: str, reason: str = "", figures: dict | None = None, *,
             now: datetime | None = None) -> MigrationPlan:
    """Back to the legacy book at 0%: the live plan (or a completed one) is rolled back. Sends `rollback`."""
    now = now or timezone.now()
    pair = check_pair(symbol)
    plan = _live_plan(pair) or _completed_plan(pair)
    if plan is None:
        raise PlanStateError(f"{pair.symbol} has no migration to roll back", code="nothing_to_roll_back")
    before = plan.current_percentage
    plan.roll_back(now)
    plan.save()
    reason = reason or "rolled back"
    _command(pair, Kind.ROLLBACK, actor, reason, percentage=0)
    _record(plan, MigrationEvent.Kind.ROLLBACK, actor, before, 0, reason, figures or {})
    automatic = actor == ROLLBACK_EVALUATOR_ACTOR
    _tell("automatic_rollback" if automatic else "rollback",
          f"{'Automatic rollback' if automatic else 'Rollback'} of {pair.symbol} from {before}% to the legacy book:"
          f" {reason}", {"pair": pair.symbol, "plan": plan.id, "actor": actor, "reason": reason,
                         "from_percentage": before, "figures": figures or {}})
    return plan


@transaction.atomic
def emergency_stop(actor: str, *, now: datetime | None = None) -> list[str]:
    """Every pair whose engine is not legacy only, or that has a live plan, back to the legacy book at once;
    their plans stopped. Returns the symbols of those pairs."""
    now = now or timezone.now()
    pairs = list(TradingPair.objects.select_for_update().order_by("symbol"))
    stopped = []
    for pair in pairs:
        plan = _live_plan(pair) or _completed_plan(pair)
        engine = engine_state(pair)
        if plan is None and engine.mode == EngineState.Mode.LEGACY_ONLY and engine.percentage == 0:
            continue
        _command(pair, Kind.EMERGENCY_STOP, actor, "emergency stop", percentage=0)
        if plan is not None:
            before = plan.current_percentage
            plan.stop(now)
            plan.save()
            _record(plan, MigrationEvent.Kind.EMERGENCY_STOP, actor, before, 0, "emergency stop")
        else:
            _audit(actor, Kind.EMERGENCY_STOP, pair, {"reason": "emergency stop", "engine_mode": engine.mode})
        stopped.append(pair.symbol)
    _tell("emergency_stop", f"Emergency stop by {actor}: {', '.join(stopped) or 'no pair'} back to the legacy book",
          {"pairs": stopped, "actor": actor})
    return stopped


@transaction.atomic
def reset_breaker(symbol: str, actor: str, *, status_code: int | None = None) -> EngineCommand:
    """Asks the worker to close the pair's circuit breaker. Sends `reset_breaker`."""
    pair = check_pair(symbol, status_code=status_code)
    engine = engine_state(pair)
    command = _command(pair, Kind.RESET_BREAKER, actor, "breaker reset by operator")
    details = {"breaker_state": engine.breaker_state, "breaker_trips": engine.breaker_trips}
    plan = _live_plan(pair)
    if plan is None:
        _audit(actor, Kind.RESET_BREAKER, pair, details)
    else:
        _record(plan, MigrationEvent.Kind.RESET_BREAKER, actor, plan.current_percentage, plan.current_percentage,
                "breaker reset", details)
    return command


@transaction.atomic
def mark_checked(plan_id: int, now: datetime) -> None:
    """The rollback evaluator looked at the plan and found nothing wrong."""
    MigrationPlan.objects.filter(id=plan_id).update(last_checked_at=now)


@transaction.atomic
def record_report(plan_id: int, figures: dict[str, Any], now: datetime) -> MigrationEvent:
    """A periodic progress report of a plan (no decision, so no audit row)."""
    plan = _locked_plan(plan_id)
    plan.last_report_at = now
    plan.save(update_fields=["last_report_at", "updated_at"])
    return MigrationEvent.objects.create(plan=plan, kind=MigrationEvent.Kind.REPORT, actor="celery:report",
                                         from_percentage=plan.current_percentage,
                                         to_percentage=plan.current_percentage, reason="progress report",
                                         figures=figures)


def _reopen_finalized(pair: TradingPair, actor: str, now: datetime) -> MigrationPlan:
    """A new running plan at 100% for a pair whose latest plan was finalized, with that plan's config."""
    finalized = _completed_plan(pair)
    if finalized is None:
        return check_live_plan(pair)            # raises: nothing live, nothing finalized
    plan = MigrationPlan(pair=pair, target_percentage=100, current_percentage=100, config=finalized.config,
                         actor=actor)
    plan.begin(now)
    plan.save()
    _record(plan, MigrationEvent.Kind.START, actor, 100, 100,
            f"reopened after finalize (plan {finalized.id}): the legacy book is rebuilt from the adaptive one")
    return plan


def engine_state(pair: TradingPair) -> EngineState:
    """The pair's engine as the worker last committed it; legacy only at 0% before the worker has written it."""
    return EngineState.objects.filter(pair=pair).first() or EngineState(pair=pair)


def live_plans() -> QuerySet[MigrationPlan]:
    """Every pending, running or paused plan, oldest first."""
    return MigrationPlan.objects.filter(state__in=LIVE_STATES).select_related("pair").order_by("id")


def watched_plans() -> list[MigrationPlan]:
    """The plans the automatic rollback triggers watch: every live plan, and the finalized plan of each pair
    the adaptive book serves alone (a trigger rolls it back to the legacy book)."""
    finalized = TradingPair.objects.filter(engine__mode=EngineState.Mode.ADAPTIVE_ONLY).order_by("id")
    return [*live_plans(), *filter(None, map(_completed_plan, finalized))]


def _live_plan(pair: TradingPair) -> MigrationPlan | None:
    return MigrationPlan.objects.filter(pair=pair, state__in=LIVE_STATES).first()


def _completed_plan(pair: TradingPair) -> MigrationPlan | None:
    latest = MigrationPlan.objects.filter(pair=pair).order_by("-id").first()
    return latest if latest is not None and latest.state == MigrationPlan.State.COMPLETED else None


def _locked_plan(plan_id: int) -> MigrationPlan:
    plan = MigrationPlan.objects.select_related("pair").get(id=plan_id)
    check_pair(plan.pair.symbol)
    plan.refresh_from_db()
    if not plan.is_live:
        raise PlanStateError(f"the plan of {plan.pair.symbol} is {plan.state}", code="no_live_plan")
    return plan


def _command(pair: TradingPair, kind: str, actor: str, reason: str, *, percentage: int | None = None,
             settings: dict | None = None) -> EngineCommand:
    command = EngineCommand.objects.create(pair=pair, kind=kind, percentage=percentage, settings=settings or {},
                                           actor=actor, reason=reason[:255])
    notify(INBOX_CHANNEL, str(pair.shard))     # the worker is woken only if, and when, the command commits
    return command


def _record(plan: MigrationPlan, kind: str, actor: str, from_percentage: int | None, to_percentage: int | None,
            reason: str, figures: dict | None = None) -> MigrationEvent:
    event = MigrationEvent.objects.create(plan=plan, kind=kind, actor=actor, from_percentage=from_percentage,
                                          to_percentage=to_percentage, reason=reason[:255], figures=figures or {})
    _audit(actor, kind, plan.pair, {"plan": plan.id, "from_percentage": from_percentage,
                                    "to_percentage": to_percentage, "reason": reason, "figures": figures or {}})
    return event


def record_read(actor: str, what: str) -> None:
    """Audits an operator's read of migration state, once per READ_AUDIT_SECONDS per operator and kind of read: who
    looked stays on record, while a `watch -n 5` of the status no longer writes 17,000 rows a day. Without Redis
    every read is audited (the mark that samples them cannot be kept)."""
    from exchange.market.published import store  # the web's Redis client

    try:
        first = store().set(f"audit:read:{what}:{actor}", 1, nx=True, ex=settings.READ_AUDIT_SECONDS)
    except redis.RedisError:
        first = True
    if first:
        AuditLog.objects.create(actor=actor, action=f"{what}_read", target="migrations",
                                details={"sampled_every_s": settings.READ_AUDIT_SECONDS})


def _tell(event: str, text: str, details: dict) -> None:
    """The webhooks, once the action has committed (`exchange/ops/webhooks.py`)."""
    transaction.on_commit(lambda: webhooks.notify(event, text, details))


def _audit(actor: str, kind: str, pair: TradingPair, details: dict) -> None:
    """Audits a migration action, and logs it once it has committed (`migration_<kind>`, a message that starts
    with "migration", as the deployment guide's `grep migration` expects)."""
    AuditLog.objects.create(actor=actor, action=f"migration_{kind}", target=f"pair:{pair.symbol}",
                            details={"pair": pair.symbol, **details})
    reason = details.get("reason") or ""
    percentages = ((details.get("from_percentage"), details.get("to_percentage"))
                   if "to_percentage" in details else None)
    message = f"migration {kind}: {pair.symbol}" + (f" {percentages[0]}% -> {percentages[1]}%" if percentages else "") \
        + (f" ({reason})" if reason else "")
    extra = {"event": f"migration_{kind}", "pair": pair.symbol, "plan": details.get("plan"), "actor": actor,
             "reason": reason}
    level = logging.WARNING if kind in WARNING_KINDS else logging.INFO
    transaction.on_commit(lambda: log.log(level, message, extra=extra))
