"""`make benchmark-trading`: runs the benchmark sections, prints their figures and writes them as JSON
under var/benchmarks/. Figures are printed, never asserted: benchmarks do not fail a build on a number.

    python -m benchmarks.trading [--section engine] [--commands N] [--runs K]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.engine_workloads import WORKLOADS

OUTPUT = Path(os.environ.get("EXCHANGE_VAR_DIR", Path(__file__).resolve().parent.parent / "var")) / "benchmarks"
BOOKS = ("legacy", "adaptive")


def engine_section(commands: int, runs: int) -> dict:
    print(f"== engine: {commands:,} commands per workload, median of {runs} runs, {os.cpu_count()} cores ==")
    figures: dict = {}
    for workload in WORKLOADS:
        figures[workload] = {}
        for book in BOOKS:
            result = subprocess.run(
                [sys.executable, "-m", "benchmarks.engine", "--workload", workload, "--book", book,
                 "--commands", str(commands), "--runs", str(runs)],
                check=True, capture_output=True, text=True,
            )
            figures[workload][book] = json.loads(result.stdout)
            print_engine_line(workload, book, figures[workload][book])
        ratio = figures[workload]["adaptive"]["commands_per_s"] / figures[workload]["legacy"]["commands_per_s"]
        print(f"   {workload}: adaptive / legacy throughput = {ratio:.2f}x")
    figures["cores"] = os.cpu_count()
    return figures


def print_engine_line(workload: str, book: str, f: dict) -> None:
    print(f"{workload:13} {book:9} {f['commands_per_s']:>11,} cmd/s  p50 {f['p50_us']:6.2f} µs  "
          f"p99 {f['p99_us']:6.2f} µs  p99.9 {f['p999_us']:7.2f} µs  trades {f['trades']:>9,}  "
          f"peak RSS {f['peak_rss_mb']:7.1f} MB  book {f['book_rss_mb']:6.1f} MB  "
          f"{f['bytes_per_resting_order']:5} B/resting order")


def write(name: str, figures: dict) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"-> {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Trading benchmarks")
    parser.add_argument("--section", choices=["engine", "all"], default="all")
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    write("engine", engine_section(options.commands, options.runs))


if __name__ == "__main__":
    main()
