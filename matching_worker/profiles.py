"""Heap and CPU profiles of a running matching worker, asked for by `manage.py worker_profile`.

The command NOTIFYs `exchange_worker_profile` with a JSON request (shard, id, kind, seconds, limit); the worker
of that shard, which LISTENs on it beside its inbox, profiles itself in a thread of its own (the serving loop
goes on, and is what the profile shows) with the web's profilers (`exchange/ops/profiling.py`), and writes the
answer to Redis under `worker-profile:<id>` for ten minutes, where the command picks it up.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import cast

import redis
from django.db import connection

from exchange.errors import DomainError
from exchange.inbox import PROFILE_CHANNEL
from exchange.ops.profiling import cpu_profile, heap_top
from exchange.stores import redis_client
from exchange.workers import has_heartbeat, shards_without_live_worker

log = logging.getLogger(__name__)
RESULT_PREFIX = "worker-profile:"
RESULT_SECONDS = 600
KINDS = ("cpu", "heap")
ANSWER_MARGIN_SECONDS = 15


class ProfileRefused(DomainError):
    """A profile that cannot be had: a bad window, no worker on the shard, or no answer from it."""

    code = "profile_refused"


def request_profile(shard: int, kind: str, seconds: float, limit: int) -> str:
    """Asks the shard's worker for a profile and waits for its answer (the profile's text)."""
    if not 0.1 <= seconds <= 60:
        raise ProfileRefused(f"--seconds must be between 0.1 and 60, not {seconds:g}")
    if limit < 1:
        raise ProfileRefused(f"--limit must be at least 1, not {limit}")
    if shards_without_live_worker([shard]) or not has_heartbeat(shard):
        raise ProfileRefused(f"shard {shard} has no running worker to profile")
    request_id = uuid.uuid4().hex
    request = {"shard": shard, "id": request_id, "kind": kind, "seconds": seconds, "limit": limit}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [PROFILE_CHANNEL, json.dumps(request)])
    answer = _wait_for_answer(request_id, seconds + ANSWER_MARGIN_SECONDS)
    if answer is None:
        raise ProfileRefused(f"no profile from shard {shard}'s worker within {seconds + ANSWER_MARGIN_SECONDS:g} s")
    if answer.startswith('{"error"'):
        raise ProfileRefused(f"the worker could not profile itself: {json.loads(answer)['error']}")
    return answer


def _wait_for_answer(request_id: str, timeout: float) -> str | None:
    store = redis_client(decode_responses=True, timeout=5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = cast(str | None, store.getdel(result_key(request_id)))    # a client that reads text
        if answer is not None:
            return answer
        time.sleep(0.2)
    return None


def result_key(request_id: str) -> str:
    return RESULT_PREFIX + request_id


def profile_answer(request: dict) -> str:
    """The profile a request asks for: collapsed stacks (cpu), or the top allocations as JSON (heap)."""
    if request["kind"] == "cpu":
        return cpu_profile(float(request["seconds"]))
    return json.dumps({"seconds": request["seconds"],
                       "top": heap_top(float(request["seconds"]), int(request.get("limit", 30)))})


class ProfileResponder:
    """Answers the profile requests addressed to one shard, each in a thread of its own."""

    def __init__(self, shard: int) -> None:
        self.shard = shard

    def handle(self, payload: str) -> None:
        try:
            request = json.loads(payload)
        except ValueError:
            log.warning("unreadable profile request", extra={"event": "profile_request_invalid", "payload": payload})
            return
        if request.get("shard") != self.shard or request.get("kind") not in KINDS:
            return
        threading.Thread(target=self._answer, args=(request,), name="profile", daemon=True).start()

    def _answer(self, request: dict) -> None:
        log.info("profiling the worker", extra={"event": "worker_profile", "shard": self.shard,
                                                "kind": request["kind"], "seconds": request["seconds"]})
        try:
            answer = profile_answer(request)
        except Exception as error:  # noqa: BLE001 - the asker is told, the worker goes on
            answer = json.dumps({"error": f"{type(error).__name__}: {error}"})
        try:
            store = redis_client(timeout=5)
            store.set(result_key(str(request["id"])), answer, ex=RESULT_SECONDS)
        except redis.RedisError as error:
            log.warning("profile not delivered", extra={"event": "worker_profile_failed", "error": str(error)})
