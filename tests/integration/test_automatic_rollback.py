"""End to end: a faulty adaptive book under a live stream is caught by the worker, and the control plane's
rollback evaluator (what celery beat ticks) rolls the pairs back by itself; no persisted result changes. A real
Celery worker delivers the webhooks: each breaker trip (sent by the matching worker) and each automatic
rollback reach the receiver."""
import subprocess
import sys
import time

import pytest
from django.utils import timezone

from exchange.models import AuditLog, Divergence, EngineState, TradingPair
from migrations_admin import actions, automation
from migrations_admin.models import MigrationEvent, MigrationPlan, PairMigrationConfig
from tests.integration.conftest import ROOT, wait_until, worker_environment
from tests.integration.order_stream import PAIRS, final_state, make_stream, prepare_market
from tests.integration.test_migration_worker import Feeder, drained, expected_without_migration
from tests.migrations_admin.test_webhooks import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

# The testing preset, with windows short enough for a test: one minute of samples decides. The breaker opens at
# the first failure, which comes in the same batch as the first error: it has opened (and its webhook is due)
# before any health sample can show the error rate that rolls the pair back, however fast that comes.
FAST_ROLLBACK = {"auto_migration": False, "metrics_interval_s": 1, "rollback_error_rate": 0.002,
                 "rollback_error_rate_window_s": 1, "breaker_failure_threshold": 1}


@pytest.fixture
def webhooks(settings):
    """A webhook receiver, and a Celery worker (solo pool) that delivers to it, on the test database."""
    receiver = Receiver()
    settings.ALERT_WEBHOOK_URLS = [receiver.url]
    celery = subprocess.Popen([sys.executable, "-m", "celery", "-A", "exchange", "worker", "--pool", "solo",
                               "--loglevel", "WARNING"], cwd=ROOT,
                              env={**worker_environment(), "ALERT_WEBHOOK_URLS": receiver.url},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield receiver
    celery.terminate()
    celery.wait(20)
    receiver.close()


def test_a_faulty_adaptive_book_is_rolled_back_automatically_and_no_result_changes(worker, webhooks):
    users = prepare_market()
    stream = make_stream(20_000, seed=21)
    expected = expected_without_migration(stream, users)
    for symbol in PAIRS:
        PairMigrationConfig.objects.create(pair=TradingPair.objects.get(symbol=symbol), preset="testing",
                                           overrides=FAST_ROLLBACK)
    worker.env = {"MATCHING_ADAPTIVE_BOOK": "tests.matching.faulty_books:WrongFillsBook",
                  "ALERT_WEBHOOK_URLS": webhooks.url}
    worker.start()
    with Feeder(stream, users, pause=0.15) as feeder:
        for symbol in PAIRS:
            actions.start_migration(symbol, 100, "operator:test")
        rolled_back: dict = {}
        deadline = time.monotonic() + 90
        while len(rolled_back) < len(PAIRS) and time.monotonic() < deadline:
            rolled_back.update(automation.evaluate_rollbacks(timezone.now()))
            time.sleep(0.5)
        assert set(rolled_back) == set(PAIRS), "the evaluator must roll back both pairs by itself"
        wait_until(lambda: set(EngineState.objects.filter(pair__symbol__in=PAIRS).values_list("mode", flat=True))
                   == {"legacy_only"}, timeout=10, message="the worker to apply the rollbacks")
    drained()
    assert worker.stop() == 0
    assert final_state(feeder.ids) == expected
    assert Divergence.objects.filter(kind="divergence").exists()
    assert set(MigrationPlan.objects.values_list("state", flat=True)) == {"rolled_back"}
    decision = MigrationEvent.objects.filter(actor=actions.ROLLBACK_EVALUATOR_ACTOR).first()
    assert decision is not None and decision.figures, "the rollback records the figures behind it"
    assert AuditLog.objects.filter(actor=actions.ROLLBACK_EVALUATOR_ACTOR).count() >= len(PAIRS)

    def told() -> dict[str, set[str]]:
        events: dict[str, set[str]] = {}
        for message in webhooks.received:
            events.setdefault(message["event"], set()).add(message["details"]["pair"])
        return events
    # A pair's breaker may or may not have opened before its error rate rolled it back: each that did is told.
    tripped = {target.removeprefix("pair:") for target in
               AuditLog.objects.filter(action="breaker_opened").values_list("target", flat=True)}
    assert tripped, "the faulty book opens a breaker"
    try:
        wait_until(lambda: told().get("automatic_rollback") == set(PAIRS)
                   and told().get("breaker_trip") == tripped, timeout=60, message="the webhooks")
    except AssertionError as waited:
        raise AssertionError(f"{waited}: the receiver was told {told()}") from None
    assert AuditLog.objects.filter(action="webhook_delivered").count() == len(webhooks.received)
