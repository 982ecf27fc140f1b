"""An inbox entry whose execution fails on its own, whatever the batch around it, is set apart: rejected
with `internal_error` and audited, while every other entry of its batch executes in order and the worker
serves on. Without this the batch failed on every retry and held up every pair of the shard."""
import time
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from exchange.models import AuditLog, EngineCommand, EngineState, Order, Trade, TradingPair
from matching_worker.quarantine import QUARANTINE_LIMIT
from tests.integration.conftest import inbox_empty, wait_until
from tests.integration.order_stream import (
    drain_in_process,
    feed,
    final_state,
    make_stream,
    prepare_market,
    reset_market,
)

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def refused_updates(table: str, condition: str):
    """Makes the database refuse, with a data exception (as an overflow would raise), every update of `table`
    whose new row meets `condition`, unless it is the worker's quarantine of that row."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.reason <> 'internal_error' AND {condition} THEN"
            "   RAISE EXCEPTION 'row % cannot be recorded', NEW.id USING ERRCODE = '22003';"
            " END IF; RETURN NEW; END $$")
        cursor.execute(f"CREATE TRIGGER refuse_{table} BEFORE UPDATE ON {table}"
                       f" FOR EACH ROW EXECUTE FUNCTION refuse_{table}()")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER refuse_{table} ON {table}; DROP FUNCTION refuse_{table}()")


@pytest.fixture
def poisoned_writes():
    """The orders of the owners in `poisoned_owner` cannot be recorded."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE poisoned_owner (id bigint PRIMARY KEY)")
    try:
        with refused_updates("exchange_order", "EXISTS (SELECT 1 FROM poisoned_owner WHERE id = NEW.owner_id)"):
            yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE poisoned_owner")


def test_a_poisoned_order_is_quarantined_and_its_batch_executes_around_it(worker, poisoned_writes):
    users = prepare_market()
    worker.start()
    worker.wait_ready()
    pid = worker.process.pid
    with connection.cursor() as cursor:     # trader 3 places the third order of the stream
        cursor.execute("INSERT INTO poisoned_owner VALUES (%s)", [users[3].id])
    stream = [("place", "BTCUSDT", 1, "sell", "limit", "gtc", "expire_taker", 50000, 1),
              ("place", "BTCUSDT", 2, "buy", "limit", "gtc", "expire_taker", 49000, 1),
              ("place", "BTCUSDT", 3, "buy", "limit", "gtc", "expire_taker", 50000, 1),   # poisoned: would trade
              ("place", "BTCUSDT", 4, "buy", "limit", "gtc", "expire_taker", 50000, 1),
              ("place", "ETHUSDT", 5, "sell", "limit", "gtc", "expire_taker", 3000, 1)]
    ids = feed(stream, users)                # one transaction: one batch

    wait_until(lambda: not Order.objects.filter(status="pending").exists(), timeout=60,
               message="the batch to execute around the poisoned order")

    assert worker.process.pid == pid and worker.running()
    status = dict(Order.objects.values_list("id", "status"))
    assert [status[order_id] for order_id in ids] == ["filled", "open", "rejected", "filled", "open"]
    assert Order.objects.get(id=ids[2]).reason == "internal_error"
    trade = Trade.objects.get()              # the order after the poisoned one took its place
    assert (trade.maker_order_id, trade.taker_order_id) == (ids[0], ids[3])
    audit = AuditLog.objects.get(action="order_quarantined")
    assert audit.target == f"order:{ids[2]}" and audit.details["sqlstate"] == "22003"
    assert worker.stop() == 0


def test_a_stream_around_a_poisoned_order_ends_as_if_that_order_had_been_rejected(worker, poisoned_writes):
    """The halving retries keep arrival order across many batches: the end state equals a clean run in which
    the poisoned order was rejected before any worker saw it."""
    users = prepare_market()
    users[13] = User.objects.create(username="poisoned-trader")
    stream = make_stream(3_000, seed=99)
    poisoned = next(index for index in range(1_500, 3_000) if stream[index][0] == "place")
    stream[poisoned] = (*stream[poisoned][:2], 13, *stream[poisoned][3:])

    ids = feed(stream, users)
    Order.objects.filter(id=ids[poisoned]).update(status="rejected", reason="internal_error")
    drain_in_process()
    expected = final_state(ids)

    reset_market()
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO poisoned_owner VALUES (%s)", [users[13].id])
    ids = feed(stream, users)
    worker.start("--max-batch", "500")
    wait_until(inbox_empty, timeout=120,
               message="the stream to execute around the poisoned order")
    assert worker.stop() == 0

    assert final_state(ids) == expected
    assert AuditLog.objects.filter(action="order_quarantined").count() == 1


@pytest.fixture
def poisoned_commands():
    """The outcome of control commands sent by actor `poison` cannot be recorded."""
    with refused_updates("exchange_enginecommand", "NEW.actor = 'poison'"):
        yield


def test_a_poisoned_control_command_is_set_apart_and_no_order_is_blamed_for_it(worker, poisoned_commands):
    users = prepare_market()
    worker.start()
    worker.wait_ready()
    stream = [("place", "BTCUSDT", 1, "sell", "limit", "gtc", "expire_taker", 50000, 1),
              ("place", "BTCUSDT", 2, "buy", "limit", "gtc", "expire_taker", 50000, 1),
              ("place", "ETHUSDT", 3, "sell", "limit", "gtc", "expire_taker", 3000, 1),
              ("place", "ETHUSDT", 4, "buy", "limit", "gtc", "expire_taker", 2900, 1)]
    with transaction.atomic():               # three commands, the middle one poisoned, and the orders: one batch
        commands = [EngineCommand.objects.create(pair=TradingPair.objects.get(symbol=symbol), kind="start",
                                                 percentage=10, actor=actor)
                    for symbol, actor in (("ETHUSDT", "operator"), ("BTCUSDT", "poison"), ("ADAUSDT", "operator"))]
        ids = feed(stream, users)

    wait_until(lambda: not Order.objects.filter(status="pending").exists()
               and not EngineCommand.objects.filter(status="pending").exists(), timeout=60,
               message="the batch to execute around the poisoned command")

    outcomes = [EngineCommand.objects.values_list("status", "reason").get(id=c.id) for c in commands]
    assert outcomes == [("applied", ""), ("rejected", "internal_error"), ("applied", "")]
    command = commands[1]
    status = dict(Order.objects.values_list("id", "status"))
    assert [status[order_id] for order_id in ids] == ["filled", "filled", "open", "open"]
    assert not AuditLog.objects.filter(action="order_quarantined").exists()
    assert AuditLog.objects.get(action="command_quarantined").target == f"command:{command.id}"
    assert EngineState.objects.get(pair__symbol="BTCUSDT").mode == "legacy_only"   # the start never took
    assert worker.stop() == 0


def test_past_the_limit_the_worker_stops_setting_entries_apart_and_the_shard_waits(worker, poisoned_writes):
    """Many entries failing on their own is a fault of the system: rejecting them all would reject good
    orders. After QUARANTINE_LIMIT the worker sets none apart any more, audits it once, and waits."""
    users = prepare_market()
    users[13] = User.objects.create(username="poisoned-trader")
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO poisoned_owner VALUES (%s)", [users[13].id])
    poisoned = ("place", "BTCUSDT", 13, "buy", "limit", "gtc", "expire_taker", 40000, 1)
    good = ("place", "ETHUSDT", 1, "buy", "limit", "gtc", "expire_taker", 2000, 1)
    stream = [poisoned] * QUARANTINE_LIMIT + [good, poisoned, good]
    worker.start()
    worker.wait_ready()
    ids = feed(stream, users)

    wait_until(lambda: AuditLog.objects.filter(action="quarantine_halted").exists(), timeout=60,
               message="the worker to stop setting entries apart")
    time.sleep(3)                            # it keeps retrying, and keeps waiting

    status = dict(Order.objects.values_list("id", "status"))
    assert [status[order_id] for order_id in ids] == ["rejected"] * QUARANTINE_LIMIT + ["open", "pending", "pending"]
    assert AuditLog.objects.filter(action="order_quarantined").count() == QUARANTINE_LIMIT
    assert AuditLog.objects.filter(action="quarantine_halted").count() == 1
    assert worker.running()
