"""The automation's decisions from per-minute figures: the four rollback triggers over consecutive minutes,
and when auto-migration steps, holds or finalizes. Pure: no database."""

from datetime import timedelta

import pytest

from migrations_admin.config import preset
from migrations_admin.decisions import (
    FINALIZE,
    HOLD,
    ROLLBACK,
    STEP,
    MinuteFigures,
    PlanPosition,
    rollback_decision,
    step_decision,
)
from tests.migrations_admin.conftest import NOW

CONFIG = preset("production")
CURRENT_MINUTE = NOW.replace(second=0)


def minutes(*figures: dict, newest=CURRENT_MINUTE) -> list[MinuteFigures]:
    """Consecutive minutes, the last one being `newest`."""
    first = newest - timedelta(minutes=len(figures) - 1)
    return [MinuteFigures(minute=first + timedelta(minutes=index), **{"commands": 1000, **values})
            for index, values in enumerate(figures)]


BAD_ERRORS = {"errors": 20}        # 2% > 1%
GOOD = {"errors": 1}


def test_error_rate_above_one_percent_for_five_minutes_rolls_back():
    decision = rollback_decision(CONFIG, minutes(*[BAD_ERRORS] * 5), NOW)

    assert decision.action == ROLLBACK
    assert decision.code == "error_rate"
    assert len(decision.figures["minutes"]) == 5
    assert decision.figures["minutes"][0]["error_rate"] == 0.02


@pytest.mark.parametrize("good_minute", range(5))
def test_four_bad_minutes_out_of_five_do_not_roll_back(good_minute):
    figures = [BAD_ERRORS] * 5
    figures[good_minute] = GOOD

    assert rollback_decision(CONFIG, minutes(*figures), NOW) is None


def test_an_error_rate_of_exactly_one_percent_is_not_above_it():
    assert rollback_decision(CONFIG, minutes(*[{"errors": 10}] * 5), NOW) is None


def test_a_gap_between_bad_minutes_breaks_the_streak():
    streak = minutes(*[BAD_ERRORS] * 5)
    with_gap = streak[:2] + [MinuteFigures(minute=m.minute + timedelta(minutes=1), commands=1000, errors=20)
                             for m in streak[2:]]

    assert rollback_decision(CONFIG, with_gap[:-1], NOW + timedelta(minutes=1)) is None


def test_stale_bad_minutes_do_not_roll_back():
    old = minutes(*[BAD_ERRORS] * 5, newest=CURRENT_MINUTE - timedelta(minutes=5))

    assert rollback_decision(CONFIG, old, NOW) is None


def test_the_previous_minute_counts_as_current():
    recent = minutes(*[BAD_ERRORS] * 5, newest=CURRENT_MINUTE - timedelta(minutes=1))

    assert rollback_decision(CONFIG, recent, NOW).code == "error_rate"


def test_p95_above_50_ms_for_three_minutes_rolls_back():
    decision = rollback_decision(CONFIG, minutes(*[{"latency_p95_us": 60_000}] * 3), NOW)

    assert decision.code == "latency_p95"
    assert decision.figures["threshold_us"] == 50_000


def test_p95_above_50_ms_for_two_minutes_does_not():
    assert rollback_decision(CONFIG, minutes({"latency_p95_us": 10}, *[{"latency_p95_us": 60_000}] * 2), NOW) is None


def test_breaker_opening_four_times_in_ten_minutes_rolls_back():
    figures = [{}] * 10
    figures[0] = figures[4] = figures[7] = figures[9] = {"breaker_trips": 1}

    decision = rollback_decision(CONFIG, minutes(*figures), NOW)

    assert decision.code == "breaker_trips"
    assert decision.figures["trips"] == 4


def test_breaker_opening_three_times_does_not():
    assert rollback_decision(CONFIG, minutes({"breaker_trips": 2}, {"breaker_trips": 1}), NOW) is None


def test_trips_older_than_ten_minutes_do_not_count():
    figures = [{"breaker_trips": 3}] + [{}] * 10 + [{"breaker_trips": 1}]

    assert rollback_decision(CONFIG, minutes(*figures), NOW) is None


def test_memory_above_90_percent_for_two_minutes_rolls_back():
    full = {"memory_bytes": 95, "memory_limit_bytes": 100}

    assert rollback_decision(CONFIG, minutes(full, full), NOW).code == "memory"
    assert rollback_decision(CONFIG, minutes({"memory_bytes": 50, "memory_limit_bytes": 100}, full), NOW) is None


def test_an_unknown_memory_limit_never_triggers():
    assert rollback_decision(CONFIG, minutes(*[{"memory_bytes": 10**12}] * 3), NOW) is None


def test_windows_shorter_than_a_minute_need_one_bad_minute():
    quick = CONFIG.with_overrides({"rollback_error_rate_window_s": 5})

    assert rollback_decision(quick, minutes(BAD_ERRORS), NOW).code == "error_rate"


def position(current=10, target=50, finalize=False, engine_mode="migrating", engine_percentage=None):
    return PlanPosition(current, target, finalize, engine_mode,
                        current if engine_percentage is None else engine_percentage)


def test_a_healthy_plan_steps_by_its_step():
    decision = step_decision(CONFIG, position(), minutes({}, {}), NOW)

    assert (decision.action, decision.percentage) == (STEP, 20)


def test_a_step_never_passes_the_target_nor_the_max_step():
    assert step_decision(CONFIG, position(current=45), minutes({}), NOW).percentage == 50
    capped = CONFIG.with_overrides({"safety_max_step": 3})
    assert step_decision(capped, position(), minutes({}), NOW).percentage == 13


def test_a_step_never_passes_the_max_percentage():
    config = preset("conservative")

    assert step_decision(config, position(current=48, target=50), minutes({}), NOW).percentage == 50


def test_high_error_rate_holds():
    decision = step_decision(CONFIG, position(), minutes({"errors": 30}), NOW)

    assert (decision.action, decision.code) == (HOLD, "error_rate")
    assert "3.00%" in decision.reason


def test_open_breaker_holds():
    decision = step_decision(CONFIG, position(), minutes({}, {"breaker_state": "open"}), NOW)

    assert (decision.action, decision.code) == (HOLD, "breaker_not_closed")


def test_no_figures_hold():
    assert step_decision(CONFIG, position(), [], NOW).code == "no_health"


def test_a_worker_that_has_not_applied_the_last_step_holds():
    decision = step_decision(CONFIG, position(current=20, engine_percentage=10), minutes({}), NOW)

    assert decision.code == "worker_behind"


def test_at_target_holds():
    assert step_decision(CONFIG, position(current=50, target=50), minutes({}), NOW).code == "at_target"


def test_at_100_with_finalize_requested_finalizes():
    decision = step_decision(CONFIG, position(current=100, target=100, finalize=True), minutes({}), NOW)

    assert decision.action == FINALIZE


def test_at_100_without_finalize_holds():
    assert step_decision(CONFIG, position(current=100, target=100), minutes({}), NOW).code == "at_target"
