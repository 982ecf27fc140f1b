"""HTTP benchmark: the trading API as `make run` serves it, with its matching worker, on a scratch database.

Run by `benchmarks.trading --section http` in a child process whose environment points at the benchmark
database. It starts the web server and the shard's worker exactly as `run_exchange` does (production
settings: DEBUG off), then measures, with the load test's client (`benchmarks.http_load`) on the same
machine:

1. single-order POSTs offered open-loop at HTTP_RATE (1,000/s) for HTTP_SECONDS (60 s), after a warm-up:
   offered and achieved rate, latency percentiles, error rate; and the inbox lag (an order's `processed_at`
   − `created_at`), which shows whether the worker kept up;
2. the batch endpoint: orders/s placed in batches of 100 by a few clients back to back;
3. the public depth endpoint: GETs/s by a few clients back to back.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from argparse import Namespace
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
django.setup()

from django.db import connection  # noqa: E402

from benchmarks.http_load import (  # noqa: E402
    DEFAULT_MIX,
    Client,
    Flow,
    LoadTest,
    Trader,
    local_traders,
    markets,
    pending_left,
    request_mix,
)
from exchange.serving.processes import child_processes  # noqa: E402
from exchange.trading.pairs import ensure_demo_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("HTTP_PORT", "18080"))
PAIRS = ["BTCUSDT", "ETHUSDT"]
SERVER_LOG = Path(os.environ.get("EXCHANGE_VAR_DIR") or ROOT / "var") / "benchmarks" / "http-servers.log"


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE exchange_trade, exchange_orderrequest, exchange_order, exchange_auditlog,"
                       " exchange_enginestate, exchange_workerheartbeat, exchange_divergence, exchange_healthsample,"
                       " exchange_enginecommand")


def start_servers() -> list[subprocess.Popen]:
    """The web server and shard 0's worker, as `run_exchange` starts them, in production mode."""
    children = {child.name: child for child in child_processes(PORT, PORT + 1, [0])}
    # One address asks for the depth as fast as it is answered: far beyond what an anonymous caller may.
    env = {**os.environ, "DEBUG": "false", "LOG_LEVEL": "warning", "API_RATE_ANONYMOUS": "1000000/s"}
    # Their logs (warnings and errors: a 500's traceback) go to var/benchmarks/http-servers.log.
    SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
    log = SERVER_LOG.open("w")
    return [subprocess.Popen(children[name].argv, cwd=ROOT, env={**env, **children[name].env},
                             stdout=log, stderr=log, start_new_session=True)
            for name in ("web", "matching-worker-0")]


def stop_servers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(60)


async def wait_until_serving(client: Client) -> None:
    for _ in range(200):
        try:
            status, _ = await client.call("GET", "/health", None)
            if status in (200, 503):
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the web server did not answer /health")


def load_options(rate: float, seconds: float) -> Namespace:
    return Namespace(rate=rate, duration=seconds, report_every=10.0, connections=256)


async def single_orders(client: Client, tokens: list[str], rate: float, seconds: float) -> dict:
    flow = Flow(await markets(client, PAIRS), [Trader(token) for token in tokens], request_mix(DEFAULT_MIX), 7)
    await LoadTest(load_options(min(rate, 200.0), 5.0), client, flow).run()          # warm-up, not counted
    started = time.time()
    summary = await LoadTest(load_options(rate, seconds), client, flow).run()
    summary["pending_left"] = await pending_left(client, tokens, 60)
    summary["window"] = (started, time.time())
    return summary


def inbox_lag_ms(window: tuple[float, float]) -> tuple[float, float]:
    """p50 and p99 of the wait in the inbox (placed → taken by the worker) of the orders placed in `window`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM"
                       " processed_at - created_at) * 1000) FROM exchange_order WHERE created_at"
                       " BETWEEN to_timestamp(%s) AND to_timestamp(%s) AND processed_at IS NOT NULL", window)
        p50, p99 = cursor.fetchone()[0] or (0.0, 0.0)
    return round(p50, 2), round(p99, 2)


async def back_to_back(client: Client, clients: int, seconds: float, request) -> int:
    """Answers 2xx to `request(n)` from `clients` concurrent clients, each sending its next request as soon as
    the previous one is answered, for `seconds`."""
    deadline = time.monotonic() + seconds
    answered = [0] * clients

    async def one_client(index: int) -> None:
        n = index * 1_000_000
        while time.monotonic() < deadline:
            status, _ = await request(n)
            answered[index] += 200 <= status < 300
            n += 1

    await asyncio.gather(*(one_client(index) for index in range(clients)))
    return sum(answered)


def batch_body(n: int) -> dict:
    orders = []
    for i in range(100):
        side = "buy" if (n + i) % 2 else "sell"
        price = 49_990 - (n + i) % 7 if side == "buy" else 50_010 + (n + i) % 7
        orders.append({"pair": "BTCUSDT", "side": side, "price": f"{price}.00", "quantity": "0.001"})
    return {"orders": orders}


async def measure(rate: float, seconds: float, tokens: list[str]) -> dict:
    client = Client(f"http://127.0.0.1:{PORT}", 512)
    try:
        await wait_until_serving(client)
        single = await single_orders(client, tokens, rate, seconds)
        window = 15.0
        batches = await back_to_back(client, 4, window, lambda n: client.call(
            "POST", "/api/orders/batch/", tokens[n % len(tokens)], batch_body(n)))
        depths = await back_to_back(client, 16, window, lambda n: client.call(
            "GET", "/api/pairs/BTCUSDT/depth/?limit=20", None))
    finally:
        client.close()
    return {
        "cores": os.cpu_count(), "web_processes": int(os.environ.get("WEB_PROCESSES") or os.cpu_count() or 2),
        "offered_per_s": single["offered_per_s"], "achieved_per_s": single["achieved_per_s"],
        "p50_ms": single["p50_ms"], "p95_ms": single["p95_ms"], "p99_ms": single["p99_ms"],
        "max_ms": single["max_ms"], "error_rate": single["error_rate"], "statuses": single["statuses"],
        "seconds": single["seconds"], "generator_cpu_share": single["generator_cpu_share"],
        "pending_left": single["pending_left"], "window": single["window"],
        "batch_orders_per_s": round(batches * 100 / window), "depth_get_per_s": round(depths / window),
    }


def main() -> None:
    rate = float(os.environ.get("HTTP_RATE", "1000"))
    seconds = float(os.environ.get("HTTP_SECONDS", "60"))
    ensure_demo_pairs()
    reset()
    tokens = local_traders(20)
    servers = start_servers()
    try:
        figures = asyncio.run(measure(rate, seconds, tokens))
    finally:
        stop_servers(servers)
    figures["inbox_lag_p50_ms"], figures["inbox_lag_p99_ms"] = inbox_lag_ms(figures.pop("window"))
    reset()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
