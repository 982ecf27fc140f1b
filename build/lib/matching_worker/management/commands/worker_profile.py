"""`manage.py worker_profile --shard N [--kind cpu|heap] [--seconds S] [--limit L] [--output FILE]`: a running
matching worker's CPU profile (collapsed stacks for flamegraph.pl, speedscope or inferno) or its top allocations
(JSON), the deployment guide's pprof lines for a worker (`matching_worker/profiles.py`)."""
import json
import time
import uuid

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from exchange.health import shards_without_live_worker
from exchange.inbox import PROFILE_CHANNEL
from matching_worker.profiles import KINDS, result_key

ANSWER_MARGIN_SECONDS = 15


class Command(BaseCommand):
    help = "Profile a running matching worker: CPU (collapsed stacks) or heap (top allocations, JSON)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--shard", type=int, required=True, help="The worker's shard.")
        parser.add_argument("--kind", choices=KINDS, default="cpu")
        parser.add_argument("--seconds", type=float, default=10.0, help="How long to profile (0.1 to 60).")
        parser.add_argument("--limit", type=int, default=30, help="Heap: how many lines.")
        parser.add_argument("--output", help="Write the profile to this file instead of standard output.")

    def handle(self, *args, shard: int, kind: str, seconds: float, limit: int, output: str | None, **options):
        if not 0.1 <= seconds <= 60:
            raise CommandError(f"--seconds must be between 0.1 and 60, not {seconds:g}")
        if limit < 1:
            raise CommandError(f"--limit must be at least 1, not {limit}")
        if shards_without_live_worker([shard]) or not _has_heartbeat(shard):
            raise CommandError(f"shard {shard} has no running worker to profile")
        request_id = uuid.uuid4().hex
        request = {"shard": shard, "id": request_id, "kind": kind, "seconds": seconds, "limit": limit}
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [PROFILE_CHANNEL, json.dumps(request)])
        answer = self._wait(request_id, seconds + ANSWER_MARGIN_SECONDS)
        if answer is None:
            raise CommandError(f"no profile from shard {shard}'s worker within {seconds + ANSWER_MARGIN_SECONDS:g} s")
        if answer.startswith('{"error"'):
            raise CommandError(f"the worker could not profile itself: {json.loads(answer)['error']}")
        if output:
            with open(output, "w") as file:
                file.write(answer)
            self.stderr.write(f"shard {shard}: {kind} profile of {seconds:g} s written to {output}")
        else:
            self.stdout.write(answer, ending="" if answer.endswith("\n") else "\n")

    @staticmethod
    def _wait(request_id: str, timeout: float) -> str | None:
        store = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, socket_timeout=5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = store.getdel(result_key(request_id))
            if answer is not None:
                return answer
            time.sleep(0.2)
        return None


def _has_heartbeat(shard: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM exchange_workerheartbeat WHERE shard = %s AND stopped_at IS NULL", [shard])
        return cursor.fetchone() is not None
