"""The management commands call the same actions as the API, as `cli:<os user>`."""

import getpass
import json

import pytest
from django.core.management import CommandError, call_command

from exchange.models import EngineCommand
from migrations_admin.models import MigrationPlan
from tests.migrations_admin.conftest import set_engine

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    from io import StringIO
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_start_percentage_rollback(pairs):
    assert run("migration_start", "--pair", "BTCUSDT", "--target", "40") == "BTCUSDT: running at 10% toward 40%\n"
    assert run("migration_percentage", "--pair", "BTCUSDT", "--percentage", "30") == "BTCUSDT: running at 30%\n"
    assert run("migration_rollback", "--pair", "BTCUSDT") == "BTCUSDT: rolled_back\n"

    kinds = list(EngineCommand.objects.order_by("id").values_list("kind", "actor"))
    actor = f"cli:{getpass.getuser()}"
    assert kinds == [("start", actor), ("set_percentage", actor), ("rollback", actor)]


def test_status_json_is_the_apis_array(pairs):
    run("migration_start", "--pair", "ETHUSDT", "--target", "0")

    statuses = json.loads(run("migration_status", "--json"))

    assert [(s["pair"], s["state"]) for s in statuses] == \
        [("ADAUSDT", "none"), ("BTCUSDT", "none"), ("DOTUSDT", "none"), ("ETHUSDT", "running")]


def test_status_table(pairs):
    run("migration_start", "--pair", "ETHUSDT", "--target", "20")

    lines = run("migration_status").splitlines()

    assert lines[0].split()[:3] == ["pair", "state", "mode"]
    # Applied 0%, requested 10% (* : the worker has not applied it yet), target 20%.
    assert lines[0].split()[:6] == ["pair", "state", "mode", "current", "requested", "target"]
    assert lines[4].split()[:6] == ["ETHUSDT", "running", "legacy_only", "0%", "10%*", "20%"]


def test_emergency_stop_and_breaker_reset(pairs):
    run("migration_start", "--pair", "BTCUSDT", "--target", "40")
    set_engine(pairs["ADAUSDT"], "migrating", 20)

    assert run("migration_emergency_stop") == "stopped: ADAUSDT, BTCUSDT\n"
    assert run("circuit_breaker_reset", "--pair", "ADAUSDT").startswith("ADAUSDT: reset_breaker sent")
    assert MigrationPlan.objects.get().state == "stopped"


def test_refusals_are_command_errors(pairs):
    with pytest.raises(CommandError, match="unknown_pair: unknown pair 'NOPE'"):
        run("migration_start", "--pair", "NOPE", "--target", "10")
    with pytest.raises(CommandError, match="percentage_out_of_range"):
        run("migration_start", "--pair", "BTCUSDT", "--target", "101")
    assert EngineCommand.objects.count() == 0
