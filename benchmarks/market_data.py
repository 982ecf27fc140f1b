"""Market data benchmark: websocket clients of one pair while the order pipeline runs, on a scratch database.

Run by `benchmarks.trading --section marketdata` in a child process whose environment points at the
benchmark database. It starts the websocket server and the shard's worker as `run_exchange` does, connects
MARKETDATA_CLIENTS (100) clients to `ws/market/BTCUSDT/` (depth and trades), offers orders to the inbox at
MARKETDATA_RATE (5,000/s) for MARKETDATA_SECONDS (20 s), and reports:

- `updates_per_s`: level updates and trades delivered, counted one by one, summed over the clients;
- `publish_p99_ms`: a batch's commit to its publication (the worker's own stamps);
- `delivery_p99_ms`: a batch's commit to a client's receipt of its update;
- `memory_per_connection_kb`: the websocket server's resident memory added per connected client;
- `messages_per_s`: update messages delivered, summed over the clients, and `cpu_share`: the share of a core
  each process used meanwhile (the websocket server, the worker, PostgreSQL, Redis, this process: the clients,
  and the order feeder, which runs in a process of its own), which says where the time goes.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
django.setup()

import websockets  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks.http_load import run_loop  # noqa: E402
from benchmarks.pipeline import offer_paced, order_rows, reset, setup_market  # noqa: E402
from exchange.serving.processes import child_processes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("MARKETDATA_PORT", "18180"))


def start_servers() -> dict[str, subprocess.Popen]:
    children = {child.name: child for child in child_processes(PORT - 1, PORT, [0])}
    env = {**os.environ, "DEBUG": "false", "LOG_LEVEL": "warning"}
    return {name: subprocess.Popen(children[name].argv, cwd=ROOT, env={**env, **children[name].env},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for name in ("websockets", "matching-worker-0")}


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU time (user + system) used so far by each named group of processes, and by this process's children that
    ended (`feeder`: the order feeder's process)."""
    used = {}
    for name, group in pids.items():
        used[name] = 0.0
        for pid in group:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open("/proc/self/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    used["feeder"] = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return used


def process_groups(servers: dict[str, subprocess.Popen]) -> dict[str, list[int]]:
    """The websocket server, the worker, PostgreSQL's and Redis's processes, and this one."""
    groups = {"websockets": [servers["websockets"].pid], "worker": [servers["matching-worker-0"].pid],
              "postgres": [], "redis": [], "clients": [os.getpid()]}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                command = cmdline.read().decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres"):
            groups["postgres"].append(int(pid))
        elif "redis-server" in command:
            groups["redis"].append(int(pid))
    return groups


def resident_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


class Client:
    """One websocket client. While the orders flow it only stamps and keeps what it receives; the messages are read
    afterwards: parsing them as they came took this process 0.4 of a core (py-spy: json.loads 40%, a task per
    timed receive 5%), which the server and the worker, on the same two cores, went without."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []
        self.updates = 0
        self.messages = 0
        self.delivery_ms: list[float] = []
        self.publish_ms: list[float] = []
        self.out_of_sequence = 0

    async def run(self, ready: asyncio.Event, stop: asyncio.Event) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{PORT}/ws/market/BTCUSDT/", max_size=None) as socket:
            await socket.send(json.dumps({"op": "subscribe", "channels": ["depth", "trades"]}))
            ready.set()
            receiving = asyncio.create_task(self._receive(socket))
            await stop.wait()
            receiving.cancel()
        self._read_received()

    async def _receive(self, socket) -> None:
        received = self.received
        async for raw in socket:
            received.append((time.time(), raw))

    def _read_received(self) -> None:
        sequence = None
        for received, raw in self.received:
            message = json.loads(raw)
            if message["type"] == "snapshot":
                sequence = message["sequence"]
            elif message["type"] == "update":
                self.out_of_sequence += message["previous_sequence"] != sequence
                sequence = message["sequence"]
                self.updates += len(message["bids"]) + len(message["asks"]) + len(message["trades"])
                self.messages += 1
                self.delivery_ms.append((received - message["committed_at"]) * 1000)
                self.publish_ms.append((message["published_at"] - message["committed_at"]) * 1000)
        self.received = []


def offer_orders(rate: int, seconds: int, pair_ids: dict, owners: list) -> float:
    """Commits orders to the inbox at `rate` per second; returns the rate offered."""
    return offer_paced(order_rows(rate * seconds, 11, pair_ids, owners), rate)   # half BTCUSDT's, half ETHUSDT's


def offer_from_a_process(rate: int, seconds: int, pair_ids: dict, owners: list) -> float:
    """`offer_orders` in a process of its own: beside 100 clients in this one, a thread here got too little of
    the interpreter to keep the rate (3,700 of 5,000 orders/s)."""
    context = multiprocessing.get_context("fork")
    result = context.Queue()
    connection.close()                       # the child opens its own
    feeder = context.Process(target=lambda: result.put(offer_orders(rate, seconds, pair_ids, owners)))
    feeder.start()
    offered = result.get()
    feeder.join()
    return offered


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 2) if ordered else 0.0


async def measure(clients: int, rate: int, seconds: int, pair_ids: dict, owners: list,
                  servers: dict[str, subprocess.Popen]) -> dict:
    server_pid = servers["websockets"].pid
    memory_before = resident_kb(server_pid)
    listeners = [Client() for _ in range(clients)]
    ready = [asyncio.Event() for _ in listeners]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(client.run(flag, stop)) for client, flag in zip(listeners, ready, strict=True)]
    await asyncio.gather(*(flag.wait() for flag in ready))
    await asyncio.sleep(1.0)
    memory_per_connection = (resident_kb(server_pid) - memory_before) / clients
    groups = process_groups(servers)
    cpu_before = cpu_seconds(groups)
    started = time.monotonic()
    offered = await asyncio.get_running_loop().run_in_executor(None, offer_from_a_process, rate, seconds, pair_ids,
                                                               owners)
    await asyncio.sleep(2.0)                      # the last batches' publication and delivery
    elapsed = time.monotonic() - started
    cpu_used = cpu_seconds(groups)
    stop.set()
    await asyncio.gather(*tasks)
    delivery = [ms for client in listeners for ms in client.delivery_ms]
    publish = [ms for ms in listeners[0].publish_ms]
    return {"clients": clients, "offered_orders_per_s": round(offered),
            "updates_per_s": round(sum(client.updates for client in listeners) / elapsed),
            "messages_per_s": round(sum(client.messages for client in listeners) / elapsed),
            "publish_p50_ms": percentile(publish, 0.5), "publish_p99_ms": percentile(publish, 0.99),
            "delivery_p50_ms": percentile(delivery, 0.5), "delivery_p99_ms": percentile(delivery, 0.99),
            "out_of_sequence": sum(client.out_of_sequence for client in listeners),
            "memory_per_connection_kb": round(memory_per_connection, 1),
            "cpu_share": {name: round((cpu_used[name] - cpu_before[name]) / elapsed, 2) for name in cpu_used}}


def main() -> None:
    clients = int(os.environ.get("MARKETDATA_CLIENTS", "100"))
    rate = int(os.environ.get("MARKETDATA_RATE", "5000"))
    seconds = int(os.environ.get("MARKETDATA_SECONDS", "20"))
    pair_ids, owners = setup_market()
    reset()
    servers = start_servers()
    try:
        time.sleep(4)                              # the server listens and the worker loads
        # On uvloop with the start-up's objects frozen out of the garbage collector, as the load test runs: the
        # clients' own pauses would count in the delivery latency.
        figures = run_loop(measure(clients, rate, seconds, pair_ids, owners, servers))
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            server.wait(30)
    reset()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
