"""The migration inside a live worker process: rollout and rollback under a live stream, emergency stop,
a kill mid-migration, and a faulty adaptive book whose mistakes never reach the database."""
import threading
import time

import pytest
from django.db import connection

from exchange.models import AuditLog, Divergence, EngineCommand, EngineState, HealthSample, TradingPair
from tests.integration.conftest import inbox_empty, wait_until
from tests.integration.order_stream import (
    PAIRS,
    drain_in_process,
    feed,
    final_state,
    make_stream,
    prepare_market,
    reset_market,
)

pytestmark = pytest.mark.django_db(transaction=True)

STREAM_LENGTH = 20_000
FAST_BREAKER = {"breaker_failure_threshold": 3, "breaker_failure_window_s": 60, "breaker_recovery_timeout_s": 600,
                "breaker_half_open_calls": 3, "adaptive_latency_limit_ms": 50}


def expected_without_migration(stream, users):
    """The reference: the same stream through a legacy-only worker, in process."""
    reset_market()
    ids = feed(stream, users)
    drain_in_process()
    result = final_state(ids)
    reset_market()
    return result


def send(kind: str, symbol: str, percentage: int | None = None, settings: dict | None = None) -> EngineCommand:
    command = EngineCommand.objects.create(pair=TradingPair.objects.get(symbol=symbol), kind=kind,
                                           percentage=percentage, settings=settings or {}, actor="test")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify('exchange_inbox', '0')")
    return command


def applied(command: EngineCommand, timeout: float = 30) -> EngineCommand:
    wait_until(lambda: EngineCommand.objects.get(id=command.id).status != "pending", timeout,
               message=f"{command.kind} to be applied")
    command.refresh_from_db()
    assert command.status == "applied", command.reason
    return command


def state(symbol: str) -> EngineState:
    return EngineState.objects.get(pair__symbol=symbol)


class Feeder:
    """Feeds the stream from a thread, slowly enough that control commands land in the middle of it."""

    def __init__(self, stream, users, pause: float = 0.1) -> None:
        self.ids: list = []
        self.thread = threading.Thread(target=self._run, args=(stream, users, pause))

    def _run(self, stream, users, pause) -> None:
        try:
            self.ids = feed(stream, users, chunk=250, pause=pause)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join()


def drained() -> None:
    wait_until(inbox_empty, 180, message="the inbox to drain")


def test_full_rollout_finalize_and_gradual_rollback_under_a_live_stream_changes_no_result(worker):
    users = prepare_market()
    stream = make_stream(STREAM_LENGTH, seed=11)
    expected = expected_without_migration(stream, users)
    worker.start()
    with Feeder(stream, users) as feeder:
        for symbol in PAIRS:
            applied(send("start", symbol, 0, FAST_BREAKER))                 # shadow mode first
        for percentage in (25, 50, 100):
            time.sleep(1)
            for symbol in PAIRS:
                applied(send("set_percentage", symbol, percentage))
        for symbol in PAIRS:
            applied(send("finalize", symbol))
        assert {state(symbol).mode for symbol in PAIRS} == {"adaptive_only"}
        time.sleep(1.5)
        for percentage in (75, 25, 0):          # the guide's gradual rollback: the legacy book comes back
            for symbol in PAIRS:
                applied(send("set_percentage", symbol, percentage))
            assert {(state(s).mode, state(s).percentage) for s in PAIRS} == {("migrating", percentage)}
            time.sleep(0.5)
        for symbol in PAIRS:
            applied(send("rollback", symbol))
    drained()
    assert worker.stop() == 0
    assert final_state(feeder.ids) == expected
    assert {(state(s).mode, state(s).percentage) for s in PAIRS} == {("legacy_only", 0)}
    assert not Divergence.objects.exists()
    adaptive_commands = sum(HealthSample.objects.filter(book="adaptive").values_list("commands", flat=True))
    assert adaptive_commands > 5_000, "the adaptive book must have carried real traffic"


def test_emergency_stop_brings_every_pair_to_zero_in_under_a_second_with_orders_flowing(worker):
    users = prepare_market()
    stream = make_stream(STREAM_LENGTH, seed=12)
    worker.start()
    with Feeder(stream, users, pause=0.05):
        for symbol in PAIRS:
            applied(send("start", symbol, 50, FAST_BREAKER))
        time.sleep(1)
        started = time.monotonic()
        for symbol in PAIRS:
            send("emergency_stop", symbol)
        wait_until(lambda: set(EngineState.objects.filter(pair__symbol__in=PAIRS).values_list("percentage", "mode"))
                   == {(0, "legacy_only")}, timeout=5, every=0.01, message="every pair at 0%")
        elapsed = time.monotonic() - started
    drained()
    assert worker.stop() == 0
    assert elapsed < 1.0, f"emergency stop took {elapsed:.2f}s"


def test_a_worker_killed_mid_migration_comes_back_in_the_same_mode_and_the_books_agree(worker):
    users = prepare_market()
    stream = make_stream(STREAM_LENGTH, seed=13)
    expected = expected_without_migration(stream, users)
    worker.start()
    with Feeder(stream, users) as feeder:
        for symbol in PAIRS:
            applied(send("start", symbol, 40, FAST_BREAKER))
        time.sleep(1.5)
        worker.kill()
        worker.start()
        time.sleep(1.5)
        worker.kill()
        worker.start()
    drained()
    assert worker.stop() == 0
    assert {(state(s).mode, state(s).percentage) for s in PAIRS} == {("migrating", 40)}
    assert final_state(feeder.ids) == expected
    assert not Divergence.objects.exists()


def test_a_faulty_adaptive_book_is_caught_and_never_changes_a_persisted_result(worker):
    users = prepare_market()
    stream = make_stream(STREAM_LENGTH, seed=14)
    expected = expected_without_migration(stream, users)
    worker.env = {"MATCHING_ADAPTIVE_BOOK": "tests.matching.faulty_books:WrongFillsBook"}
    worker.start()
    with Feeder(stream, users, pause=0.05) as feeder:
        for symbol in PAIRS:
            applied(send("start", symbol, 100, FAST_BREAKER))
    drained()
    assert worker.stop() == 0
    assert final_state(feeder.ids) == expected
    assert Divergence.objects.filter(kind="divergence").count() >= 3
    assert all(state(symbol).breaker_state == "open" and state(symbol).breaker_trips >= 1 for symbol in PAIRS)
    assert AuditLog.objects.filter(action="breaker_opened").count() >= len(PAIRS)
    assert HealthSample.objects.filter(book="adaptive", divergences__gt=0).exists()
