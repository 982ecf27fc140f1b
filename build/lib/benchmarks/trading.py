"""`make benchmark-trading`: runs the benchmark sections, prints their figures and writes them as JSON
under var/benchmarks/. Figures are printed, never asserted: benchmarks do not fail a build on a number.

    python -m benchmarks.trading [--section engine|pipeline|migration|http] [--commands N] [--runs K]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.engine_workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = Path(os.environ.get("EXCHANGE_VAR_DIR", ROOT / "var")) / "benchmarks"
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


def benchmark_database_environment() -> dict:
    """A scratch database beside the configured one, migrated: the benchmarks truncate its tables."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django
    django.setup()
    from django.db import connection
    settings = connection.settings_dict
    name = f"{settings['NAME']}_benchmark"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DB_HOST=settings["HOST"] or "localhost", DB_PORT=str(settings["PORT"] or 5432), DB_NAME=name,
               DB_USER=settings["USER"] or "", DB_PASSWORD=settings["PASSWORD"] or "")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
    return env


def child_figures(module: str, env: dict, *args: str) -> dict:
    """Runs a benchmark module in a child process on the scratch database; the last line it prints is its
    figures, as JSON (what it logs on stderr is shown as it comes)."""
    result = subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=ROOT, check=True,
                            stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def pipeline_section(orders: int) -> dict:
    print(f"== pipeline: {orders:,} orders through one worker, PostgreSQL on this machine, "
          f"{os.cpu_count()} cores ==")
    env = benchmark_database_environment()
    env["PIPELINE_ORDERS"] = str(orders)
    figures = child_figures("benchmarks.pipeline", env)
    print(f"throughput   {figures['orders_per_s']:>8,} orders/s  {figures['trades_per_s']:>8,} trades/s: "
          f"{figures['orders']:,} orders drained in {figures['sustained_seconds']} s "
          f"(slowest 5 s window: {figures['slowest_5s_orders_per_s']:,} orders/s)")
    print(f"latency at {figures['offered_orders_per_s']:,} orders/s offered: order p50 "
          f"{figures['order_latency_p50_ms']} ms  p95 {figures['order_latency_p95_ms']} ms  p99 "
          f"{figures['order_latency_p99_ms']} ms; trade p50 {figures['trade_latency_p50_ms']} ms  p95 "
          f"{figures['trade_latency_p95_ms']} ms")
    return figures


def http_section() -> dict:
    print(f"== http: the API as `make run` serves it, with its worker, on this machine's {os.cpu_count()} cores ==")
    env = benchmark_database_environment()
    f = child_figures("benchmarks.http_api", env)
    print(f"single orders: offered {f['offered_per_s']:,}/s achieved {f['achieved_per_s']:,}/s for {f['seconds']} s;"
          f" p50 {f['p50_ms']} ms  p95 {f['p95_ms']} ms  p99 {f['p99_ms']} ms  max {f['max_ms']} ms;"
          f" error rate {f['error_rate']:.4%} {f['statuses']}")
    print(f"worker: inbox lag p50 {f['inbox_lag_p50_ms']} ms  p99 {f['inbox_lag_p99_ms']} ms; pending after the run"
          f" {f['pending_left']}; load generator used {f['generator_cpu_share']:.0%} of a core")
    print(f"batch endpoint {f['batch_orders_per_s']:,} orders/s; public depth GET {f['depth_get_per_s']:,} requests/s"
          f" ({f['web_processes']} web processes)")
    return f


def migration_section(orders: int) -> dict:
    print(f"== migration: one stream per mode, {orders:,} orders drained + latency at an offered load, "
          f"{os.cpu_count()} cores ==")
    env = benchmark_database_environment()
    env["PIPELINE_ORDERS"] = str(orders)
    figures = child_figures("benchmarks.pipeline", env, "--migration")
    for mode, f in figures.items():
        print(f"{mode:14} {f['orders_per_s']:>8,} orders/s  latency at {f['offered_orders_per_s']:,}/s: p50 "
              f"{f['order_latency_p50_ms']} ms  p95 {f['order_latency_p95_ms']} ms  p99 {f['order_latency_p99_ms']} ms"
              f"  divergences {f['divergences']}")
    base = figures["legacy_only"]["order_latency_p95_ms"] or 1
    print(f"   migrating_50 / legacy_only p95 latency = {figures['migrating_50']['order_latency_p95_ms'] / base:.2f}x")
    return figures


def marketdata_section() -> dict:
    print(f"== marketdata: websocket clients of BTCUSDT while the pipeline runs, {os.cpu_count()} cores ==")
    env = benchmark_database_environment()
    f = child_figures("benchmarks.market_data", env)
    print(f"{f['clients']} clients, {f['offered_orders_per_s']:,} orders/s offered: {f['updates_per_s']:,} updates/s"
          f" delivered; publish p50 {f['publish_p50_ms']} ms p99 {f['publish_p99_ms']} ms; delivery p50"
          f" {f['delivery_p50_ms']} ms p99 {f['delivery_p99_ms']} ms; {f['out_of_sequence']} out of sequence;"
          f" {f['memory_per_connection_kb']} kB per connection")
    print(f"{f['messages_per_s']:,} update messages/s delivered; cores used: "
          + ", ".join(f"{name} {share:.2f}" for name, share in f["cpu_share"].items()))
    return f


def write(name: str, figures: dict) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"-> {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Trading benchmarks")
    parser.add_argument("--section", choices=["engine", "pipeline", "migration", "http", "marketdata", "all"],
                        default="all")
    parser.add_argument("--commands", type=int, default=1_000_000, help="engine: commands per workload")
    parser.add_argument("--runs", type=int, default=3, help="engine: runs per figure (the median is kept)")
    parser.add_argument("--orders", type=int, default=1_000_000,
                        help="pipeline: orders in the throughput run (more if it drains in under 30 s)")
    options = parser.parse_args()
    if options.section in ("engine", "all"):
        write("engine", engine_section(options.commands, options.runs))
    if options.section in ("pipeline", "all"):
        write("pipeline", pipeline_section(options.orders))
    if options.section in ("migration", "all"):
        write("migration", migration_section(min(options.orders, 200_000)))
    if options.section in ("http", "all"):
        write("http", http_section())
    if options.section in ("marketdata", "all"):
        write("marketdata", marketdata_section())


if __name__ == "__main__":
    main()
