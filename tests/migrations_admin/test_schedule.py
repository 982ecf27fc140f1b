"""The control plane owns its timing: celery beat's schedule holds its three tasks at the tick interval (beside
the exchange's own retention prune), and a
MIGRATION_PRESET that names no preset stops every process at start-up with a message saying what to choose."""

import os
import subprocess
import sys

from exchange.celery import app
from migrations_admin import tasks
from migrations_admin.config import preset


def test_beat_runs_the_three_tasks_every_tick_of_the_preset_by_default(settings):
    settings.MIGRATION_TICK_SECONDS = 0
    settings.MIGRATION_PRESET = "testing"

    tasks.schedule_ticks(app)

    tick = preset("testing").metrics_interval_s
    scheduled = {entry["task"]: (entry["schedule"], entry["options"]["expires"])
                 for entry in app.conf.beat_schedule.values() if entry["task"].startswith("migrations_admin.")}
    assert scheduled == {f"migrations_admin.tasks.{name}": (tick, tick)
                         for name in ("auto_migrate", "evaluate_rollbacks", "report_progress")}


def test_migration_tick_interval_overrides_the_presets_interval(settings):
    settings.MIGRATION_TICK_SECONDS = 7

    tasks.schedule_ticks(app)

    assert {entry["schedule"] for entry in app.conf.beat_schedule.values()
            if entry["task"].startswith("migrations_admin.")} == {7.0}


def test_an_unknown_migration_preset_is_refused_at_start_up():
    result = subprocess.run([sys.executable, "manage.py", "check"], capture_output=True, text=True,
                            env={**os.environ, "MIGRATION_PRESET": "fastest"})

    assert result.returncode != 0
    assert ("MIGRATION_PRESET='fastest'; choose one of conservative, production, aggressive, testing, high_volume"
            in result.stderr)
