"""Open-loop load test of the trading API: `scripts/load-test.sh --duration=10m --rate=1000rps`.

Requests leave on a fixed schedule whatever the server answers, and each one's latency is measured from the
moment it was *due*, not from when a connection was free: a slow server cannot hide its latency by slowing
the generator down (no coordinated omission). When every connection is busy a new one is opened, up to
`--connections`; past that, requests queue and their wait counts in their latency.

The flow is a market: limit orders on both sides around a mid price that drifts, some of them crossing, most
resting; some market and IOC orders; cancels of the user's own earlier orders. It prints the offered and
achieved rate, latency percentiles and answers by status every few seconds and at the end, then checks that
the matching worker took every accepted order (none left pending), and judges the run against the deployment
guide's criteria (P95 < 10 ms, error rate < 0.01%) and the achieved rate (at least 99% of the offered one).
Exit status 0 on PASS, 1 on FAIL, 2 on bad flags.

Why a client of our own: the open loop needs a schedule-driven client, which Debian's `wrk` (closed loop)
is not, and locust's per-request cost is several times this one's. The HTTP/1.1 it speaks is the subset the
API needs: keep-alive, Content-Length or chunked bodies. It costs about 60 µs a request, so 1,000
requests/s take under a tenth of a core (the report prints what it used).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import sys
import time
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from urllib.parse import urlsplit

DEFAULT_PAIRS = ("BTCUSDT", "ETHUSDT")
DEFAULT_MIX = "limit=70,market=5,ioc=10,cancel=15"
REQUEST_KINDS = ("limit", "market", "ioc", "cancel")
# What each kind of request may be answered without being an error: a cancel of an order that filled (or was
# cancelled) in the meantime is a 409 `order_finished`, an ordinary answer in a market that moves.
EXPECTED = {"limit": {201}, "market": {201}, "ioc": {201}, "cancel": {200, 202, 409}}
DEFAULT_MIDS = {"BTCUSDT": Decimal("50000"), "ETHUSDT": Decimal("3000"), "ADAUSDT": Decimal("0.5"),
                "DOTUSDT": Decimal("7")}
PERCENTILES = (50, 95, 99)
# The schedule and every latency are read off this clock: uvloop's own clock counts whole milliseconds.
clock = time.perf_counter


# ---- flags --------------------------------------------------------------------------------------
def duration_seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 60s, 10m or 1h")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def rate_per_second(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(?:rps|/s)?", text.strip())
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate like 1000rps")
    return float(match[1])


def request_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind not in REQUEST_KINDS or not re.fullmatch(r"\d+(\.\d+)?", weight):
            raise argparse.ArgumentTypeError(
                f"{part!r}: the mix is kind=weight,... with kinds {', '.join(REQUEST_KINDS)}")
        mix[kind] = float(weight)
    if not any(mix.get(kind) for kind in ("limit", "market", "ioc")):
        raise argparse.ArgumentTypeError("the mix must place some orders (limit, market or ioc)")
    return mix


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="load-test.sh", description="Open-loop load test of the trading API (single-order placements).")
    parser.add_argument("--duration", type=duration_seconds, default=duration_seconds("60s"),
                        help="how long to offer the load, e.g. 60s, 10m (default 60s)")
    parser.add_argument("--rate", type=rate_per_second, default=1000.0, help="requests per second, e.g. 1000rps")
    parser.add_argument("--base-url", default=os.environ.get("EXCHANGE_URL", "http://localhost:8080"),
                        help="the exchange (default $EXCHANGE_URL or http://localhost:8080)")
    parser.add_argument("--token", action="append", default=[],
                        help="a trader's API token; repeat for several traders (default $EXCHANGE_TOKEN; without"
                             " any, --users traders are created in the local database)")
    parser.add_argument("--users", type=int, default=20, help="traders to create when no token is given (20)")
    parser.add_argument("--pairs", default=",".join(DEFAULT_PAIRS), help="comma-separated symbols")
    parser.add_argument("--mix", type=request_mix, default=request_mix(DEFAULT_MIX),
                        help=f"request kinds and weights (default {DEFAULT_MIX})")
    parser.add_argument("--connections", type=int, default=256, help="most connections open at once (256)")
    parser.add_argument("--report-every", type=duration_seconds, default=5.0, help="seconds between reports (5s)")
    parser.add_argument("--pending-timeout", type=duration_seconds, default=30.0,
                        help="how long the worker may take to finish the accepted orders after the run (30s)")
    parser.add_argument("--max-p95-ms", type=float, default=10.0, help="PASS needs P95 below this (10)")
    parser.add_argument("--max-error-rate", type=float, default=0.0001, help="PASS needs fewer errors (0.0001)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the final figures as one JSON line too")
    options = parser.parse_args(argv)
    if not options.token and os.environ.get("EXCHANGE_TOKEN"):
        options.token = [os.environ["EXCHANGE_TOKEN"]]
    if options.users < 1 or options.connections < 1:
        parser.error("--users and --connections must be at least 1")
    options.pairs = [symbol.strip().upper() for symbol in options.pairs.split(",") if symbol.strip()]
    return options


# ---- a minimal keep-alive HTTP/1.1 client ------------------------------------------------------
class HttpError(Exception):
    """The connection failed or the answer was not HTTP."""


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.open = True

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        if not status_line.startswith(b"HTTP/1."):
            raise HttpError(f"not an HTTP answer: {status_line[:40]!r}")
        status = int(status_line[9:12])
        length, chunked = None, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                self.open = False
        if chunked:
            return status, await self._chunked_body()
        if length is None:
            self.open = False
            return status, await self.reader.read()
        return status, await self.reader.readexactly(length)

    async def _chunked_body(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        self.open = False
        self.writer.close()


class Client:
    """A pool of keep-alive connections to one server: a request takes an idle connection or opens one."""

    def __init__(self, base_url: str, limit: int) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http":
            raise SystemExit(f"load-test: only http:// URLs are supported, not {base_url!r}")
        self.host, self.port = url.hostname, url.port or 80
        self.prefix = url.path.rstrip("/")
        self.idle: deque[Connection] = deque()
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def call(self, method: str, path: str, token: str | None, payload: object = None) -> tuple[int, bytes]:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        head = (f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                + (f"Authorization: Token {token}\r\n" if token else "")
                + ("Content-Type: application/json\r\n" if payload is not None else "")
                + f"Content-Length: {len(body)}\r\n\r\n").encode()
        async with self.slots:
            connection = self.idle.pop() if self.idle else await self._connect()
            try:
                status, answer = await connection.request(head, body)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, HttpError):
                connection.close()
                raise
            if connection.open:
                self.idle.append(connection)
            else:
                connection.close()
            return status, answer

    async def warm_up(self, count: int) -> None:
        """Opens `count` connections ahead of the run: opening them on demand made its first seconds slow."""
        opened = await asyncio.gather(*(self._connect() for _ in range(count)))
        self.idle.extend(opened)

    async def _connect(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.opened += 1
        return Connection(reader, writer)

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


# ---- the order flow -------------------------------------------------------------------------------
@dataclass
class Market:
    """A pair as the flow trades it: its grid and a mid price that drifts by a tick at a time."""

    symbol: str
    tick: Decimal
    lot: Decimal
    min_notional: Decimal
    mid_ticks: int

    def price(self, ticks: int) -> str:
        return f"{(self.tick * max(ticks, 1)).normalize():f}"

    def quantity(self, lots: int, price_ticks: int) -> str:
        """`lots` lots, raised to the least quantity whose notional reaches the pair's minimum."""
        least = (self.min_notional / (self.tick * max(price_ticks, 1)) / self.lot).to_integral_value(ROUND_CEILING)
        return f"{(self.lot * max(lots, int(least))).normalize():f}"


@dataclass
class Trader:
    token: str
    recent: deque = field(default_factory=lambda: deque(maxlen=200))     # ids of its GTC orders


class Flow:
    """Decides each request: which trader, which pair, which kind, what price."""

    def __init__(self, markets: list[Market], traders: list[Trader], mix: dict[str, float], seed: int) -> None:
        self.markets = markets
        self.traders = traders
        self.random = random.Random(seed)
        self.kinds = list(mix)
        self.weights = [mix[kind] for kind in self.kinds]

    def next(self) -> tuple[str, Trader, str, dict | None]:
        """(kind, trader, path, body) of the next request."""
        rng = self.random
        trader = rng.choice(self.traders)
        kind = rng.choices(self.kinds, self.weights)[0]
        if kind == "cancel":
            if trader.recent:
                order_id = trader.recent[rng.randrange(len(trader.recent))]
                return kind, trader, f"/api/orders/{order_id}/cancel/", None
            kind = "limit"
        market = rng.choice(self.markets)
        market.mid_ticks = max(10, market.mid_ticks + rng.choice((-1, 0, 0, 1)))
        side = "buy" if rng.random() < 0.5 else "sell"
        # Mostly a little away from the mid (they rest), a fifth a little through it (they cross).
        offset = rng.randint(-3, 20)
        ticks = market.mid_ticks - offset if side == "buy" else market.mid_ticks + offset
        body = {"pair": market.symbol, "side": side, "quantity": market.quantity(rng.randint(1, 20), ticks)}
        if kind == "market":
            body["type"] = "market"
        else:
            body["price"] = market.price(ticks)
            if kind == "ioc":
                body["time_in_force"] = "ioc"
        return kind, trader, "/api/orders/", body


# ---- figures --------------------------------------------------------------------------------------
class Figures:
    """Latencies (ms) and answers of a stretch of the run."""

    def __init__(self) -> None:
        self.latencies = array("d")
        self.statuses: Counter = Counter()
        self.errors = 0
        self.sent = 0

    def record(self, latency_ms: float, status: str, error: bool) -> None:
        self.latencies.append(latency_ms)
        self.statuses[status] += 1
        self.errors += error

    def merge(self, other: Figures) -> None:
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)
        self.errors += other.errors
        self.sent += other.sent

    def summary(self, seconds: float, answered_seconds: float | None = None) -> dict:
        """Figures over `seconds` of sending; the achieved rate counts the answers over `answered_seconds`, from
        the first request to the last answer (by default the same)."""
        ordered = sorted(self.latencies)
        answered = len(ordered)
        answered_seconds = answered_seconds or seconds
        return {
            "sent": self.sent, "answered": answered,
            "offered_per_s": round(self.sent / seconds, 1) if seconds else 0.0,
            "achieved_per_s": round((answered - self.errors) / answered_seconds, 1) if answered_seconds else 0.0,
            **{f"p{p}_ms": round(percentile(ordered, p), 2) for p in PERCENTILES},
            "max_ms": round(ordered[-1], 2) if ordered else 0.0,
            "errors": self.errors,
            "error_rate": round(self.errors / answered, 6) if answered else 0.0,
            "statuses": dict(sorted(self.statuses.items())),
        }


def percentile(ordered, p: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def line(label: str, figures: dict) -> str:
    statuses = " ".join(f"{status}:{count}" for status, count in figures["statuses"].items())
    return (f"{label} offered {figures['offered_per_s']:7.1f}/s achieved {figures['achieved_per_s']:7.1f}/s"
            f"  p50 {figures['p50_ms']:6.2f}  p95 {figures['p95_ms']:6.2f}  p99 {figures['p99_ms']:6.2f}"
            f"  max {figures['max_ms']:7.2f} ms  errors {figures['errors']}  [{statuses}]")


# ---- the run --------------------------------------------------------------------------------------
class LoadTest:
    def __init__(self, options: argparse.Namespace, client: Client, flow: Flow) -> None:
        self.options = options
        self.client = client
        self.flow = flow
        self.total = Figures()
        self.stretch = Figures()
        self.in_flight: set[asyncio.Task] = set()

    async def run(self) -> dict:
        rate, duration = self.options.rate, self.options.duration
        count = int(rate * duration)
        cpu_started, started = time.process_time(), clock()
        reporter = asyncio.create_task(self._report(started))
        sent = 0
        while sent < count:
            now = clock()
            due_count = min(count, int((now - started) * rate) + 1)
            while sent < due_count:         # everything due by now leaves now, each timed from its due moment
                self._send(started + sent / rate)
                sent += 1
            await asyncio.sleep(max(0.0, started + sent / rate - clock()))
        offered_seconds = clock() - started
        if self.in_flight:
            await asyncio.wait(self.in_flight, timeout=30)
        answered_seconds = clock() - started
        reporter.cancel()
        self._flush_stretch(None)
        summary = self.total.summary(offered_seconds, answered_seconds)
        summary["seconds"] = round(offered_seconds, 1)
        summary["rate"] = rate
        summary["connections_opened"] = self.client.opened
        summary["generator_cpu_share"] = round((time.process_time() - cpu_started) / (clock() - started), 3)
        return summary

    def _send(self, due: float) -> None:
        kind, trader, path, body = self.flow.next()
        self.stretch.sent += 1
        task = asyncio.create_task(self._one(due, kind, trader, path, body))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _one(self, due: float, kind: str, trader: Trader, path: str, body: dict | None) -> None:
        try:
            async with asyncio.timeout(30):
                status, answer = await self.client.call("POST", path, trader.token, body)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, HttpError, ValueError) as error:
            self.stretch.record((clock() - due) * 1000, type(error).__name__, True)
            return
        self.stretch.record((clock() - due) * 1000, str(status), status not in EXPECTED[kind])
        if status == 201 and kind == "limit":
            trader.recent.append(json.loads(answer)["id"])

    async def _report(self, started: float) -> None:
        every = self.options.report_every
        last = started
        while True:
            await asyncio.sleep(every)
            now = clock()
            self._flush_stretch(line(f"[{now - started:6.0f} s]", self.stretch.summary(now - last)))
            last = now

    def _flush_stretch(self, text: str | None) -> None:
        if text:
            print(text, flush=True)
        self.total.merge(self.stretch)
        self.stretch = Figures()


# ---- setting up: traders, markets, and the check at the end --------------------------------------
def local_traders(count: int) -> list[str]:
    """Tokens of `count` traders `loadtest-N`, created in the database this checkout's settings name (the
    local instance's): for a run against the exchange on this machine."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django
    django.setup()
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    tokens = []
    for number in range(count):
        user, _ = User.objects.get_or_create(username=f"loadtest-{number}")
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return tokens


async def markets(client: Client, symbols: list[str]) -> list[Market]:
    found = []
    for symbol in symbols:
        status, answer = await client.call("GET", f"/api/pairs/{symbol}/", None)
        if status != 200:
            raise SystemExit(f"load-test: pair {symbol}: HTTP {status} {answer[:200].decode(errors='replace')}")
        pair = json.loads(answer)
        tick = Decimal(pair["tick_size"])
        status, answer = await client.call("GET", f"/api/pairs/{symbol}/ticker/", None)
        last = json.loads(answer).get("last") if status == 200 else None
        mid = Decimal(last) if last else DEFAULT_MIDS.get(symbol, 1000 * tick)
        found.append(Market(symbol, tick, Decimal(pair["lot_size"]), Decimal(pair["min_notional"]),
                            int(mid / tick)))
    return found


async def pending_left(client: Client, tokens: list[str], timeout: float) -> int:
    """How many of the traders' orders are still pending once the worker had `timeout` seconds to finish."""
    deadline = time.monotonic() + timeout
    while True:
        left = 0
        for token in tokens:
            status, answer = await client.call("GET", "/api/orders/?status=pending&page_size=1", token)
            left += json.loads(answer)["count"] if status == 200 else 1
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


def verdict(summary: dict, options: argparse.Namespace) -> list[str]:
    """The criteria the run failed; empty when it passed."""
    failed = []
    if summary["p95_ms"] >= options.max_p95_ms:
        failed.append(f"P95 {summary['p95_ms']} ms is not below {options.max_p95_ms} ms")
    if summary["error_rate"] >= options.max_error_rate:
        failed.append(f"error rate {summary['error_rate']:.4%} is not below {options.max_error_rate:.4%}")
    if summary["achieved_per_s"] < 0.99 * summary["rate"]:
        failed.append(f"achieved {summary['achieved_per_s']}/s is below 99% of the offered {summary['rate']}/s")
    if summary["pending_left"]:
        failed.append(f"{summary['pending_left']} accepted orders still pending {options.pending_timeout:g} s "
                      "after the run")
    return failed


async def load_test(options: argparse.Namespace, tokens: list[str]) -> dict:
    client = Client(options.base_url, options.connections)
    try:
        flow = Flow(await markets(client, options.pairs), [Trader(token) for token in tokens], options.mix,
                    options.seed)
        print(f"load test: {options.rate:g} requests/s for {options.duration:g} s against {options.base_url},"
              f" {len(tokens)} traders, pairs {', '.join(options.pairs)}, mix "
              + ", ".join(f"{kind}={weight:g}" for kind, weight in options.mix.items()), flush=True)
        await client.warm_up(min(options.connections, max(8, int(options.rate // 50))))
        summary = await LoadTest(options, client, flow).run()
        summary["pending_left"] = await pending_left(client, tokens, options.pending_timeout)
        return summary
    finally:
        client.close()


def run_loop(coroutine):
    """Runs the coroutine on uvloop when it is installed (half the event loop's cost per request), with the
    start-up's objects frozen out of the garbage collector, whose full passes otherwise paused the schedule."""
    gc.collect()
    gc.freeze()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(sys.argv[1:] if argv is None else argv)
    summary = run_loop(load_test(options, options.token or local_traders(options.users)))
    print(line("[  total ]", summary))
    print(f"generator: {summary['connections_opened']} connections, {summary['generator_cpu_share']:.0%} of a core;"
          f" orders still pending after the run: {summary['pending_left']}")
    failed = verdict(summary, options)
    summary["passed"] = not failed
    if options.json:
        print(json.dumps(summary))
    print("PASS" if not failed else "FAIL: " + "; ".join(failed))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
