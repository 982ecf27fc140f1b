"""`manage.py worker_profile`: a running matching worker's CPU profile and top allocations, asked over NOTIFY and
answered through Redis while the worker keeps serving."""
import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.integration.order_stream import prepare_market

pytestmark = pytest.mark.django_db(transaction=True)


def profile(**options) -> str:
    out = io.StringIO()
    call_command("worker_profile", stdout=out, **options)
    return out.getvalue()


def test_a_running_workers_cpu_and_heap_profiles(worker, tmp_path):
    prepare_market()
    worker.start()
    worker.wait_ready()

    stacks = profile(shard=0, kind="cpu", seconds=1).splitlines()
    output = tmp_path / "heap.json"
    call_command("worker_profile", shard=0, kind="heap", seconds=0.5, limit=5, output=str(output),
                 stderr=io.StringIO())

    # Collapsed stacks: "thread;outer;...;inner count", the serving loop among them.
    assert stacks and all(line.rsplit(" ", 1)[1].isdigit() for line in stacks)
    assert any(line.startswith("MainThread;") and "_serve (" in line for line in stacks)
    heap = json.loads(output.read_text())
    assert heap["seconds"] == 0.5 and 0 < len(heap["top"]) <= 5
    assert {"size_bytes", "count", "where"} <= set(heap["top"][0])
    assert worker.stop() == 0


def test_a_shard_without_a_worker_is_a_clear_error():
    with pytest.raises(CommandError, match="shard 7 has no running worker"):
        profile(shard=7, seconds=1)
    with pytest.raises(CommandError, match="between 0.1 and 60"):
        profile(shard=0, seconds=120)
