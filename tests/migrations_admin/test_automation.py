"""The celery tasks' work: auto-migration steps healthy due plans and holds unhealthy ones (recording why,
once), finalizes when asked; the rollback evaluator rolls back on a trigger with the figures recorded."""

from datetime import timedelta

import pytest

from exchange.models import AuditLog, EngineCommand
from migrations_admin import actions, automation, tasks
from migrations_admin.models import MigrationEvent, MigrationPlan, PairMigrationConfig
from tests.migrations_admin.conftest import NOW, add_minutes, set_engine

pytestmark = pytest.mark.django_db
LATER = NOW + timedelta(minutes=6)          # past production's 5-minute step interval


@pytest.fixture
def plan(btc) -> MigrationPlan:
    """BTCUSDT migrating toward 50% (production: from 10% in steps of 10), the worker caught up."""
    plan = actions.start_migration("BTCUSDT", 50, "operator:ops", now=NOW)
    set_engine(btc, "migrating", 10)
    return plan


def test_a_healthy_due_plan_steps_up(plan, btc):
    add_minutes(btc, LATER, 5)

    assert automation.auto_migrate(LATER) == {"BTCUSDT": "step: healthy: 10% -> 20%"}

    plan.refresh_from_db()
    assert (plan.state, plan.current_percentage, plan.last_step_at) == ("running", 20, LATER)
    assert plan.next_step_at == LATER + timedelta(minutes=5)
    command = EngineCommand.objects.first()
    assert (command.kind, command.percentage, command.actor) == ("set_percentage", 20, "celery:auto-migration")
    event = MigrationEvent.objects.first()
    assert (event.kind, event.from_percentage, event.to_percentage) == ("step", 10, 20)
    assert AuditLog.objects.first().action == "migration_step"


def test_a_plan_is_not_stepped_before_its_interval(plan, btc):
    add_minutes(btc, NOW, 1)

    assert automation.auto_migrate(NOW + timedelta(minutes=4)) == {}
    assert EngineCommand.objects.count() == 1


def test_an_unhealthy_plan_holds_and_records_why_once(plan, btc):
    add_minutes(btc, LATER, 5, errors=50)

    automation.auto_migrate(LATER)
    automation.auto_migrate(LATER + timedelta(minutes=4))

    plan.refresh_from_db()
    assert (plan.state, plan.current_percentage, plan.hold_code) == ("paused", 10, "error_rate")
    assert plan.next_step_at == LATER + timedelta(minutes=7)  # cooldown 3 minutes after the second look
    holds = MigrationEvent.objects.filter(kind="hold")
    assert holds.count() == 1
    assert holds.get().figures["code"] == "error_rate"
    assert "5.00%" in holds.get().reason
    assert EngineCommand.objects.count() == 1


def test_a_held_plan_resumes_when_healthy(plan, btc):
    add_minutes(btc, LATER, 1, breaker_state="open")
    automation.auto_migrate(LATER)
    healthy_later = LATER + timedelta(minutes=10)
    add_minutes(btc, healthy_later, 5)

    automation.auto_migrate(healthy_later)

    plan.refresh_from_db()
    assert (plan.state, plan.current_percentage, plan.hold_reason) == ("running", 20, "")


def test_a_plan_at_its_target_holds(plan, btc):
    actions.set_percentage("BTCUSDT", 50, "operator:ops", now=NOW)
    set_engine(btc, "migrating", 50)
    add_minutes(btc, LATER, 1)

    automation.auto_migrate(LATER)

    plan.refresh_from_db()
    assert (plan.current_percentage, plan.hold_code) == (50, "at_target")


def test_a_plan_at_100_that_asks_for_it_is_finalized(btc):
    actions.start_migration("BTCUSDT", 100, "operator:ops", finalize_at_target=True, now=NOW)
    actions.set_percentage("BTCUSDT", 100, "operator:ops", now=NOW)
    set_engine(btc, "migrating", 100)
    add_minutes(btc, LATER, 1)

    automation.auto_migrate(LATER)

    assert MigrationPlan.objects.get().state == "completed"
    assert EngineCommand.objects.first().kind == "finalize"


def test_plans_without_auto_migration_are_left_alone(btc):
    PairMigrationConfig.objects.create(pair=btc, preset="conservative")
    actions.start_migration("BTCUSDT", 50, "operator:ops", now=NOW)
    set_engine(btc, "migrating", 5)
    add_minutes(btc, NOW + timedelta(hours=1), 5)

    assert automation.auto_migrate(NOW + timedelta(hours=1)) == {}


def test_the_celery_tasks_run_the_same_work(plan, btc):
    # The tasks use the clock: NOW is long past, so the step is due, and no sample is recent.
    assert tasks.auto_migrate.apply().get() == {"BTCUSDT": "hold: no recent health figures from the worker"}
    assert tasks.evaluate_rollbacks.apply().get() == {}
    assert tasks.report_progress.apply().get() == ["BTCUSDT"]


def test_error_rate_for_five_minutes_rolls_back_with_the_figures(plan, btc):
    add_minutes(btc, LATER, 5, errors=20)

    assert automation.evaluate_rollbacks(LATER) == {
        "BTCUSDT": "adaptive error rate above 1.00% for 5 consecutive minutes"}

    plan.refresh_from_db()
    assert (plan.state, plan.current_percentage) == ("rolled_back", 0)
    command = EngineCommand.objects.first()
    assert (command.kind, command.actor) == ("rollback", "celery:rollback-evaluator")
    event = MigrationEvent.objects.first()
    assert (event.kind, event.actor, event.from_percentage, event.to_percentage) == \
        ("rollback", "celery:rollback-evaluator", 10, 0)
    assert event.figures["trigger"] == "error_rate"
    assert [minute["error_rate"] for minute in event.figures["minutes"]] == [0.02] * 5
    assert AuditLog.objects.first().details["figures"]["trigger"] == "error_rate"


def test_a_finalized_pair_is_still_watched_and_rolled_back_to_the_legacy_book(btc):
    actions.start_migration("BTCUSDT", 100, "operator:ops", now=NOW)
    actions.set_percentage("BTCUSDT", 100, "operator:ops", now=NOW)
    finalized = actions.finalize("BTCUSDT", "operator:ops", now=NOW)
    set_engine(btc, "adaptive_only", 100)
    add_minutes(btc, LATER, 3, latency_p95_us=60_000.0)

    assert automation.evaluate_rollbacks(LATER) == {"BTCUSDT": "adaptive P95 latency above 50 ms for 3 consecutive "
                                                               "minutes"}

    finalized.refresh_from_db()
    assert (finalized.state, finalized.current_percentage) == ("rolled_back", 0)
    command = EngineCommand.objects.first()
    assert (command.kind, command.actor) == ("rollback", "celery:rollback-evaluator")


def test_a_healthy_finalized_pair_is_checked_and_left_alone(btc):
    actions.start_migration("BTCUSDT", 100, "operator:ops", now=NOW)
    actions.set_percentage("BTCUSDT", 100, "operator:ops", now=NOW)
    finalized = actions.finalize("BTCUSDT", "operator:ops", now=NOW)
    set_engine(btc, "adaptive_only", 100)
    add_minutes(btc, LATER, 5)

    assert automation.evaluate_rollbacks(LATER) == {}
    finalized.refresh_from_db()
    assert (finalized.state, finalized.last_checked_at) == ("completed", LATER)


def test_four_bad_minutes_leave_the_plan_running(plan, btc):
    add_minutes(btc, LATER, 5, errors=20)
    add_minutes(btc, LATER - timedelta(minutes=2), 1, errors=0)

    assert automation.evaluate_rollbacks(LATER) == {}
    plan.refresh_from_db()
    assert (plan.state, plan.last_checked_at) == ("running", LATER)


def test_memory_trigger_rolls_back(plan, btc):
    add_minutes(btc, LATER, 2, memory_bytes=95, memory_limit_bytes=100)

    assert automation.evaluate_rollbacks(LATER)["BTCUSDT"].startswith("worker memory above 90%")


def test_a_plan_is_evaluated_once_per_metrics_interval(plan, btc):
    automation.evaluate_rollbacks(LATER)
    add_minutes(btc, LATER, 5, errors=20)

    assert automation.evaluate_rollbacks(LATER + timedelta(seconds=5)) == {}
    assert "BTCUSDT" in automation.evaluate_rollbacks(LATER + timedelta(seconds=10))


def test_triggers_use_the_pairs_own_config(pairs):
    PairMigrationConfig.objects.create(pair=pairs["ETHUSDT"], overrides={"rollback_error_rate_window_s": 60})
    for symbol in ("BTCUSDT", "ETHUSDT"):
        actions.start_migration(symbol, 50, "operator:ops", now=NOW)
        add_minutes(pairs[symbol], LATER, 1, errors=20)

    assert list(automation.evaluate_rollbacks(LATER)) == ["ETHUSDT"]


def test_progress_reports_follow_the_report_interval(plan, btc):
    add_minutes(btc, NOW + timedelta(minutes=3), 4, commands=100, errors=1)
    add_minutes(btc, NOW + timedelta(minutes=3), 4, book="legacy", commands=900)

    assert automation.report_progress(NOW + timedelta(minutes=4)) == []
    assert automation.report_progress(NOW + timedelta(minutes=5)) == ["BTCUSDT"]

    report = MigrationEvent.objects.get(kind="report")
    assert report.figures["adaptive"]["commands"] == 400
    assert report.figures["legacy"]["commands"] == 3600
