"""The migrating engine: routing by keyed hash, verification, divergence handling, breaker, transitions."""
import pytest

from benchmarks.engine_workloads import balanced
from matching.adaptive_book import AdaptiveOrderBook
from matching.circuit_breaker import CLOSED, HALF_OPEN, OPEN, BreakerSettings, CircuitBreaker
from matching.legacy_book import LegacyOrderBook
from matching.migration import (
    ADAPTIVE_ONLY,
    LEGACY_ONLY,
    MIGRATING,
    ControlCommandRefused,
    MigratingEngine,
    RolloutSettings,
)
from matching.orders import CancelOrder, ReduceOrder
from tests.matching import faulty_books
from tests.matching.test_engine import as_commands


class FakeClock:
    """Nanoseconds that advance by `step` on every reading: each timed call seems to take `step`."""

    def __init__(self, step: int = 1_000) -> None:
        self.now, self.step = 0, step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def engine(adaptive_class=AdaptiveOrderBook, clock=None, **settings) -> MigratingEngine:
    return MigratingEngine("BTCUSDT", LegacyOrderBook(), adaptive_class=adaptive_class,
                           settings=RolloutSettings(**settings), clock=clock or FakeClock())


def run(engine_, commands):
    return [engine_.apply(command) for command in commands]


COMMANDS = list(as_commands(balanced(6_000, seed=5)))


def test_legacy_only_runs_the_legacy_book_alone():
    pair = engine()
    assert pair.mode == LEGACY_ONLY and pair.adaptive is None
    assert run(pair, COMMANDS[:10]) == run(MigratingEngine("X", LegacyOrderBook()), COMMANDS[:10])


def test_start_builds_the_adaptive_book_from_a_snapshot_of_the_legacy_book():
    pair = engine()
    run(pair, COMMANDS[:3000])
    pair.start(10, RolloutSettings())
    assert pair.mode == MIGRATING
    assert pair.adaptive.snapshot() == pair.legacy.snapshot()
    assert pair.adaptive.resting_order_count() > 0


@pytest.mark.parametrize("percentage", [0, 37, 100])
def test_a_healthy_migration_gives_exactly_the_events_of_the_legacy_book(percentage):
    reference = MigratingEngine("X", LegacyOrderBook())
    pair = engine()
    pair.start(percentage, RolloutSettings())
    assert run(pair, COMMANDS) == run(reference, COMMANDS)
    assert pair.disagreements == [] and pair.health["adaptive"].errors == 0
    assert pair.health["adaptive"].commands == len(COMMANDS)


def test_the_bucket_is_stable_and_spreads_orders_evenly():
    pair = engine()
    assert pair.bucket(12345) == pair.bucket(12345)
    share = sum(pair.bucket(order_id) < 2500 for order_id in range(20_000)) / 20_000
    assert 0.23 < share < 0.27
    other_key = engine(hash_key="another-key")
    assert [other_key.bucket(n) for n in range(10)] != [pair.bucket(n) for n in range(10)]


def test_the_percentage_decides_which_book_executes():
    pair = engine()
    pair.start(30, RolloutSettings())
    eligible = [order_id for order_id in range(1, 2001) if pair.bucket(order_id) < 3000]
    assert 0.25 < len(eligible) / 2000 < 0.35


def test_a_divergence_keeps_the_legacy_result_records_both_and_resyncs():
    faulty_books.WrongFillsBook.calls = 0
    reference = MigratingEngine("X", LegacyOrderBook())
    pair = engine(faulty_books.WrongFillsBook, breaker=BreakerSettings(failure_threshold=1000))
    pair.start(100, RolloutSettings(breaker=BreakerSettings(failure_threshold=1000)))
    assert run(pair, COMMANDS) == run(reference, COMMANDS)
    divergences = [d for d in pair.disagreements if d.kind == "divergence"]
    assert divergences and pair.health["adaptive"].divergences == len(divergences)
    first = divergences[0]
    assert first.adaptive_outcome != first.legacy_events
    assert [e for e in first.adaptive_outcome if e[0] == "trade"][0][4] + 1 == \
        [e for e in first.legacy_events if e[0] == "trade"][0][4]
    assert pair.adaptive.snapshot() == pair.legacy.snapshot()


def test_an_exception_in_the_adaptive_book_fails_over_to_the_legacy_book():
    faulty_books.RaisingBook.calls = 0
    reference = MigratingEngine("X", LegacyOrderBook())
    settings = RolloutSettings(breaker=BreakerSettings(failure_threshold=1000))
    pair = engine(faulty_books.RaisingBook)
    pair.start(100, settings)
    assert run(pair, COMMANDS) == run(reference, COMMANDS)
    assert {d.kind for d in pair.disagreements} == {"exception"}
    assert "injected fault" in pair.disagreements[0].adaptive_outcome


def test_the_breaker_opens_after_repeated_failures_and_then_sends_every_order_to_legacy():
    faulty_books.RaisingBook.calls = 0
    clock = FakeClock()
    pair = engine(faulty_books.RaisingBook, clock=clock)
    settings = RolloutSettings(breaker=BreakerSettings(failure_threshold=3, failure_window=3600,
                                                         recovery_timeout=3600))
    pair.start(100, settings)
    run(pair, COMMANDS[:2000])
    assert pair.breaker.state == OPEN and pair.breaker_opened == 1
    primary_before = pair.health["adaptive"].commands
    run(pair, COMMANDS[2000:2100])
    assert pair.health["adaptive"].commands == primary_before + 100    # still verifying, never executing


def test_slowness_over_the_limit_counts_as_a_breaker_failure():
    pair = engine(clock=FakeClock(step=60_000_000))                    # every timed call "takes" 60 ms
    pair.start(50, RolloutSettings(adaptive_latency_limit_ms=50,
                                     breaker=BreakerSettings(failure_threshold=2, failure_window=3600)))
    run(pair, COMMANDS[:5])
    assert pair.health["adaptive"].slow >= 2 and pair.breaker.state == OPEN


def test_breaker_goes_half_open_after_the_cool_down_and_closes_after_successes():
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=2, failure_window=10, recovery_timeout=30,
                                             half_open_calls=2))
    assert breaker.record_failure(0) is False and breaker.record_failure(1) is True
    assert breaker.state == OPEN and not breaker.allows(20)
    assert breaker.allows(31) and breaker.state == HALF_OPEN
    assert breaker.allows(31) and not breaker.allows(31)               # a trickle of two
    breaker.record_success()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.trips == 1


def test_a_failure_while_half_open_reopens_the_breaker():
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=1, recovery_timeout=5))
    breaker.record_failure(0)
    breaker.allows(6)
    assert breaker.record_failure(6) is True and breaker.state == OPEN and breaker.trips == 2


def test_failures_outside_the_window_do_not_open_the_breaker():
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=3, failure_window=10))
    for now in (0, 11, 22, 33):
        assert breaker.record_failure(now) is False
    assert breaker.state == CLOSED


def test_finalize_needs_100_percent_and_drops_the_legacy_book():
    pair = engine()
    pair.start(50, RolloutSettings())
    with pytest.raises(ControlCommandRefused, match="finalize needs migrating at 100%"):
        pair.finalize()
    pair.set_percentage(100)
    pair.finalize()
    assert pair.mode == ADAPTIVE_ONLY and pair.legacy is None


def test_rollback_from_adaptive_only_rebuilds_the_legacy_book_and_continues_identically():
    reference = MigratingEngine("X", LegacyOrderBook())
    pair = engine()
    pair.start(100, RolloutSettings())
    expected = run(reference, COMMANDS)
    got = run(pair, COMMANDS[:2000])
    pair.finalize()
    got += run(pair, COMMANDS[2000:4000])
    pair.rollback()
    assert pair.mode == LEGACY_ONLY and pair.percentage == 0
    got += run(pair, COMMANDS[4000:])
    assert got == expected


def test_lowering_the_percentage_after_finalize_rebuilds_the_legacy_book_and_continues_identically():
    """The deployment guide's gradual rollback (75, 50, 25, 0%) works on a finalized pair too."""
    reference = MigratingEngine("X", LegacyOrderBook())
    pair = engine()
    pair.start(100, RolloutSettings())
    expected = run(reference, COMMANDS)
    got = run(pair, COMMANDS[:2000])
    pair.finalize()
    got += run(pair, COMMANDS[2000:3000])
    for step, percentage in enumerate((75, 50, 25, 0)):
        pair.set_percentage(percentage)
        assert (pair.mode, pair.percentage) == (MIGRATING, percentage)
        got += run(pair, COMMANDS[3000 + step * 500:3500 + step * 500])
    assert pair.legacy.snapshot() == pair.adaptive.snapshot()
    got += run(pair, COMMANDS[5000:])
    assert got == expected
    assert pair.health["adaptive"].divergences == 0


def test_control_commands_that_do_not_apply_are_refused_with_the_reason():
    pair = engine()
    with pytest.raises(ControlCommandRefused, match="already legacy_only"):
        pair.rollback()
    with pytest.raises(ControlCommandRefused, match="only while migrating"):
        pair.set_percentage(10)
    pair.start(10, RolloutSettings())
    with pytest.raises(ControlCommandRefused, match="start needs legacy_only"):
        pair.start(10, RolloutSettings())
    with pytest.raises(ControlCommandRefused, match="between 0 and 100"):
        pair.set_percentage(101)


def test_emergency_stop_is_never_refused():
    pair = engine()
    pair.emergency_stop()
    pair.start(100, RolloutSettings())
    pair.finalize()
    pair.emergency_stop()
    assert pair.mode == LEGACY_ONLY


def test_cancel_and_reduce_are_verified_too():
    pair = engine()
    pair.start(100, RolloutSettings())
    pair.place(1, 1, "buy", 5, 100, "limit", "gtc", "expire_taker")
    assert pair.apply(ReduceOrder(1, 2))[1] == [("accepted", 1), ("level", "buy", 100, 2)]
    assert pair.apply(CancelOrder(1))[1][1] == ("cancelled", 1, "user")
    assert pair.health["adaptive"].commands == 3 and pair.health["legacy"].commands == 3


def test_settings_round_trip_through_json():
    settings = RolloutSettings(BreakerSettings(4, 30.0, 60.0, 2), 12.5, "k")
    assert RolloutSettings.from_json(settings.to_json()) == settings
