"""Profiles of a running process for troubleshooting, the deployment guide's pprof lines in Python terms:

- the heap: tracemalloc's top allocations by line, over a window of `seconds` (tracing is started for the
  window if it was off, and stopped after: it slows every allocation while on);
- the CPU: every thread's stack sampled every SAMPLE_SECONDS for `seconds`, in the collapsed-stack text that
  flamegraph.pl, speedscope and inferno read (`thread;outer;...;inner count` per line).

Pure standard library; the views in `exchange/ops/views.py` serve them to staff."""
from __future__ import annotations

import sys
import threading
import time
import tracemalloc
from collections import Counter
from types import FrameType

SAMPLE_SECONDS = 0.005
TRACEMALLOC_FRAMES = 10


def heap_top(seconds: float, limit: int) -> list[dict]:
    """The `limit` lines that hold the most memory allocated and not freed, `seconds` after looking starts (the
    whole process's since tracing began, if it was on already)."""
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start(TRACEMALLOC_FRAMES)
    try:
        time.sleep(seconds)
        ignored = [tracemalloc.Filter(False, tracemalloc.__file__),
                   tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
        snapshot = tracemalloc.take_snapshot().filter_traces(ignored)
    finally:
        if started_here:
            tracemalloc.stop()
    return [{"size_bytes": stat.size, "count": stat.count,
             "where": f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}"}
            for stat in snapshot.statistics("lineno")[:limit]]


def cpu_profile(seconds: float) -> str:
    """Every other thread's stack, sampled for `seconds`, as collapsed stacks, busiest first."""
    me = threading.get_ident()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    stacks: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for ident, top in sys._current_frames().items():
            if ident == me:
                continue
            frames = []
            frame: FrameType | None = top
            while frame is not None:
                code = frame.f_code
                frames.append(f"{code.co_name} ({code.co_filename}:{frame.f_lineno})")
                frame = frame.f_back
            stacks[";".join([names.get(ident, str(ident)), *reversed(frames)])] += 1
        time.sleep(SAMPLE_SECONDS)
    return "".join(f"{stack} {count}\n" for stack, count in stacks.most_common())
