"""Heap and CPU profiles of a running matching worker, asked for by `manage.py worker_profile`.

The command NOTIFYs `exchange_worker_profile` with a JSON request (shard, id, kind, seconds, limit); the worker
of that shard, which LISTENs on it beside its inbox, profiles itself in a thread of its own (the serving loop
goes on, and is what the profile shows) with the web's profilers (`exchange/profiling.py`), and writes the
answer to Redis under `worker-profile:<id>` for ten minutes, where the command picks it up.
"""
from __future__ import annotations

import json
import logging
import threading

import redis
from django.conf import settings

from exchange.profiling import cpu_profile, heap_top

log = logging.getLogger(__name__)
RESULT_PREFIX = "worker-profile:"
RESULT_SECONDS = 600
KINDS = ("cpu", "heap")


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
            store = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
            store.set(result_key(str(request["id"])), answer, ex=RESULT_SECONDS)
        except redis.RedisError as error:
            log.warning("profile not delivered", extra={"event": "worker_profile_failed", "error": str(error)})
