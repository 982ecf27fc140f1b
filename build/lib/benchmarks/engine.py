"""Engine benchmark: one book on one seeded workload, in its own process so peak memory is its own.

    python -m benchmarks.engine --workload balanced --book adaptive --commands 1000000 --runs 3

Prints one JSON object: commands/s (median of the runs, no per-command timer in the loop), latency per
command p50/p99/p99.9 in µs (a separate run timing every command with perf_counter_ns, whose own
cost of ~50 ns is included), trades produced, peak RSS of the process, the RSS the book added, and
bytes per resting order measured with tracemalloc at the end of the stream.
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import time
import tracemalloc
from array import array

from benchmarks.engine_workloads import WORKLOADS
from matching.engine import book_class


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(book_kind: str, commands: list) -> float:
    book = book_class(book_kind)()
    verbs = (book.place, book.cancel, book.reduce)
    gc.collect()
    gc.disable()        # a collection pass mid-run measures the collector, not the book; both books alike
    started = time.perf_counter()
    for verb, args in commands:
        verbs[verb](*args)
    elapsed = time.perf_counter() - started
    gc.enable()
    return len(commands) / elapsed


def latencies(book_kind: str, commands: list) -> tuple[array, int]:
    book = book_class(book_kind)()
    verbs = (book.place, book.cancel, book.reduce)
    timings = array("q", bytes(8 * len(commands)))
    clock = time.perf_counter_ns
    trades = 0
    gc.collect()
    gc.disable()
    for index, (verb, args) in enumerate(commands):
        started = clock()
        events = verbs[verb](*args)
        timings[index] = clock() - started
        for event in events:
            if event[0] == "trade":
                trades += 1
    gc.enable()
    return timings, trades


def bytes_per_resting_order(book_kind: str, commands: list) -> float:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    book = book_class(book_kind)()
    verbs = (book.place, book.cancel, book.reduce)
    for verb, args in commands:
        verbs[verb](*args)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / max(1, book.resting_order_count())


def percentile_us(sorted_ns: list, fraction: float) -> float:
    return round(sorted_ns[min(len(sorted_ns) - 1, int(fraction * len(sorted_ns)))] / 1000, 2)


def measure(workload: str, book_kind: str, count: int, runs: int) -> dict:
    commands = WORKLOADS[workload](count)
    baseline = rss_mb()
    rates = [throughput(book_kind, commands) for _ in range(runs)]
    timings, trades = latencies(book_kind, commands)
    book_rss = rss_mb() - baseline
    ordered = sorted(timings)
    return {
        "commands_per_s": round(statistics.median(rates)),
        "commands_per_s_runs": [round(rate) for rate in rates],
        "p50_us": percentile_us(ordered, 0.50),
        "p99_us": percentile_us(ordered, 0.99),
        "p999_us": percentile_us(ordered, 0.999),
        "trades": trades,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "book_rss_mb": round(book_rss, 1),
        "bytes_per_resting_order": round(bytes_per_resting_order(book_kind, commands)),
        "commands": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    parser.add_argument("--book", choices=["legacy", "adaptive"], required=True)
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    print(json.dumps(measure(options.workload, options.book, options.commands, options.runs)))


if __name__ == "__main__":
    main()
