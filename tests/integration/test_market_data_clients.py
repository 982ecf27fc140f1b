"""Market data under the conditions a production feed meets: clients that do not read, more clients than a
process takes, a Redis emptied under a running worker, an operator's cache warm-up, a migration running; and the
REST market data agreeing with the streams, all with a real worker, a real websocket server and real clients."""
import asyncio
import json
import socket
import subprocess
import time
from decimal import Decimal

import pytest
import websockets
from django.conf import settings
from django.db.models import Count
from rest_framework.test import APIClient
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from exchange.market.published import store
from exchange.models import EngineState, Trade
from tests.integration.conftest import ROOT, inbox_empty, wait_until, worker_environment
from tests.integration.order_stream import feed, make_stream, prepare_market
from tests.integration.test_market_data_stream import BookKeeper, engine_book, start_websocket_server
from tests.integration.test_migration_worker import applied, send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def servers(tmp_path):
    """Starts websocket servers with extra settings, logging to `server.log` in the test's directory; stops them
    at the end."""
    started = []

    def start(**env: str) -> str:
        server, url = start_websocket_server(tmp_path / "server.log", **env)
        started.append(server)
        return url

    yield start
    for server in started:
        server.terminate()
        server.wait(10)


def deep_book(levels: int) -> list[tuple]:
    """Resting BTCUSDT orders, one at each of `levels` prices on each side: a big snapshot."""
    return [("place", "BTCUSDT", 1 + n % 12, side, "limit", "gtc", "none",
             Decimal(50_000 + (n + 1) * (1 if side == "sell" else -1)), Decimal("0.001"))
            for n in range(levels) for side in ("buy", "sell")]


def all_pending_taken() -> None:
    wait_until(inbox_empty, 60, 0.1, "the worker to take every order")


class ClientThatDoesNotRead:
    """A websocket client over a plain socket with a small receive buffer: it sends, and reads nothing until
    asked (a client library would keep reading into a queue of its own)."""

    def __init__(self, url: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url))
        host, port = url.split("//")[1].split("/")[0].split(":")
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.socket.connect((host, int(port)))
        self.protocol.send_request(self.protocol.connect())
        self.socket.sendall(b"".join(self.protocol.data_to_send()))
        while self.protocol.handshake_exc is None and not self.protocol.events_received() and (
                self.protocol.state is State.CONNECTING):
            self.protocol.receive_data(self.socket.recv(4096))
        assert self.protocol.state is State.OPEN

    def send(self, message: dict) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self.socket.sendall(b"".join(self.protocol.data_to_send()))

    def read_all(self, timeout: float) -> list[str]:
        """Reads until the server ends the connection; the types of the messages it was sent."""
        self.socket.settimeout(timeout)
        received = []
        while data := self.socket.recv(1 << 16):
            self.protocol.receive_data(data)
            received += [json.loads(frame.data)["type"] for frame in self.protocol.events_received()
                         if frame.opcode is Opcode.TEXT]
        self.socket.close()
        return received


def test_a_client_that_does_not_read_is_dropped_and_the_others_are_not_held_up(servers, worker, tmp_path):
    url = servers(WEBSOCKET_SEND_TIMEOUT_SECONDS="1")
    users = prepare_market()
    worker.start()
    worker.wait_ready()
    feed(deep_book(1000), users)                   # each snapshot is about 65 kB
    all_pending_taken()
    keeper, lags, asked = BookKeeper(), [], 300
    slow = ClientThatDoesNotRead(f"{url}/ws/market/BTCUSDT/")

    async def scenario() -> None:
        async with websockets.connect(f"{url}/ws/market/BTCUSDT/") as fast:
            await fast.send(json.dumps({"op": "subscribe", "channels": ["depth", "trades"]}))
            for _ in range(asked):                 # a snapshot each, none of them read
                slow.send({"op": "subscribe", "channels": ["depth"]})
            feeding = asyncio.get_running_loop().run_in_executor(None, feed_slowly)
            deadline = time.monotonic() + 60
            while not feeding.done() or keeper.sequence != published_sequence():
                assert time.monotonic() < deadline, f"the client stays at {keeper.sequence}, not {published_sequence()}"
                try:
                    message = json.loads(await asyncio.wait_for(fast.recv(), 0.5))
                except TimeoutError:
                    continue
                keeper.take(message)
                if message["type"] == "update":
                    lags.append(time.time() - message["published_at"])
            await feeding

    def feed_slowly() -> None:
        from django.db import connection
        try:
            feed(make_stream(1500, seed=5), users, chunk=30, pause=0.02)
            all_pending_taken()
        finally:
            connection.close()

    asyncio.run(scenario())
    # The server fills the slow client's socket at its own pace (a snapshot costs some milliseconds): the client
    # reads nothing until the server says it dropped it, however long the scenario took.
    wait_until(lambda: "websocket client dropped" in (tmp_path / "server.log").read_text(), 60, 0.2,
               "the server to drop the client that does not read")
    slow_received = slow.read_all(timeout=10)

    assert slow_received.count("snapshot") < asked / 2, "the slow client was not dropped"
    assert keeper.updates > 20 and max(lags) < 1.0, f"the other client waited {max(lags):.2f} s"
    assert (keeper.bids, keeper.asks) == engine_book()


def published_sequence() -> int | None:
    value = store().get("md:BTCUSDT:sequence")
    return None if value is None else int(value)


def test_a_process_refuses_streams_beyond_its_cap(servers):
    url = servers(WEBSOCKET_MAX_CONNECTIONS="2")
    prepare_market()

    async def scenario() -> tuple[dict, int]:
        async with websockets.connect(f"{url}/ws/market/BTCUSDT/"), websockets.connect(f"{url}/ws/market/ETHUSDT/"):
            async with websockets.connect(f"{url}/ws/market/BTCUSDT/") as third:
                refusal = json.loads(await asyncio.wait_for(third.recv(), 5))
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(third.recv(), 5)
                code = third.close_code
        async with websockets.connect(f"{url}/ws/market/BTCUSDT/") as again:    # the two closed: room again
            await again.send(json.dumps({"op": "subscribe", "channels": ["depth"]}))
            assert json.loads(await asyncio.wait_for(again.recv(), 5))["type"] == "snapshot"
        return refusal, code

    refusal, code = asyncio.run(scenario())

    assert (refusal["type"], refusal["code"], code) == ("error", "too_many_connections", 1013)


class MarketWatcher(BookKeeper):
    """A client of every channel of the pair: the book, and the newest ticker and kline it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.ticker: dict | None = None
        self.klines: dict[str, dict] = {}

    def take(self, message: dict) -> None:
        if message["type"] in ("snapshot", "update"):
            super().take(message)
        if message["type"] == "ticker" or "ticker" in message:
            self.ticker = message["ticker"]
        if message["type"] == "kline":
            self.klines[message["kline"]["open_time"]] = message["kline"]
        for kline in message.get("klines", []):
            self.klines[kline["open_time"]] = kline


async def watch(url: str, watcher: MarketWatcher, until) -> None:
    async with websockets.connect(f"{url}/ws/market/BTCUSDT/") as client:
        await client.send(json.dumps({"op": "subscribe", "channels": ["depth", "trades", "ticker", "klines"]}))
        while not until():
            try:
                watcher.take(json.loads(await asyncio.wait_for(client.recv(), 0.2)))
            except TimeoutError:
                continue


def run_market(url: str, worker, stream_seed: int, between=None) -> MarketWatcher:
    """Feeds two halves of a stream with a client watching; `between` runs between the halves."""
    users = prepare_market()
    worker.start()
    worker.wait_ready()
    watcher, finished = MarketWatcher(), []
    halves = make_stream(2000, seed=stream_seed), make_stream(2000, seed=stream_seed + 100)

    def feed_all() -> None:
        from django.db import connection
        try:
            feed(halves[0], users, chunk=50, pause=0.01)
            all_pending_taken()
            if between is not None:
                between()
            feed(halves[1], users, chunk=50, pause=0.01)
            all_pending_taken()
            wait_until(lambda: watcher.sequence == published_sequence(), 10, 0.05, "the last batch's update")
        finally:
            connection.close()

    async def scenario() -> None:
        client = asyncio.create_task(watch(url, watcher, lambda: bool(finished)))
        await asyncio.sleep(0.5)
        await asyncio.get_running_loop().run_in_executor(None, feed_all)
        finished.append(True)
        await client

    asyncio.run(scenario())
    return watcher


def assert_rest_agrees(watcher: MarketWatcher) -> None:
    """The REST market data, the stream and the tables all say the same."""
    public = APIClient()
    bids, asks = engine_book()
    depth = public.get("/api/pairs/BTCUSDT/depth/", {"limit": 500}).json()
    assert ({level["price"]: level["quantity"] for level in depth["bids"]},
            {level["price"]: level["quantity"] for level in depth["asks"]}) == (bids, asks) == (watcher.bids,
                                                                                                watcher.asks)
    trades = public.get("/api/pairs/BTCUSDT/trades/", {"limit": 100}).json()
    assert [trade["sequence"] for trade in trades] == list(
        Trade.objects.filter(pair__symbol="BTCUSDT").order_by("-sequence").values_list("sequence", flat=True)[:100])
    ticker = public.get("/api/pairs/BTCUSDT/ticker/").json()
    figures = Trade.objects.filter(pair__symbol="BTCUSDT").aggregate(count=Count("id"))
    assert ticker["trade_count"] == figures["count"] > 0
    figures_of = ("open", "high", "low", "last", "base_volume", "quote_volume", "trade_count")
    assert {key: watcher.ticker[key] for key in figures_of} == {key: ticker[key] for key in figures_of}
    served = public.get("/api/pairs/BTCUSDT/klines/", {"interval": "1m", "limit": 5}).json()
    assert served and all(watcher.klines[kline["open_time"]] == kline for kline in served)


def test_the_rest_market_data_equals_the_streams_and_survives_an_emptied_redis(servers, worker):
    def empty_redis() -> None:
        store().delete(*store().scan_iter("md:*"))

    watcher = run_market(servers(), worker, 31, between=empty_redis)

    assert watcher.snapshots >= 2            # the worker found its state gone and wrote it whole again
    assert_rest_agrees(watcher)


@pytest.mark.parametrize("mode", ["migrating", "adaptive_only"])
def test_a_client_keeps_the_engines_book_while_the_pair_migrates(servers, worker, mode):
    def migrate() -> None:
        applied(send("start", "BTCUSDT", percentage=50))
        if mode == "adaptive_only":
            applied(send("set_percentage", "BTCUSDT", percentage=100))
            applied(send("finalize", "BTCUSDT"))

    watcher = run_market(servers(), worker, 32, between=migrate)

    assert EngineState.objects.get(pair__symbol="BTCUSDT").mode == mode
    assert watcher.updates > 50
    assert_rest_agrees(watcher)


def test_the_cache_warmup_publishes_a_pair_again(worker):
    users = prepare_market()
    worker.start()
    worker.wait_ready()
    feed(make_stream(1000, seed=33), users)
    all_pending_taken()
    store().delete(*store().scan_iter("md:*"))

    run = subprocess.run(["scripts/cache-warmup.sh", "--pairs=BTCUSDT,ethusdt"], cwd=ROOT, capture_output=True,
                         text=True, env={**worker_environment(), "REDIS_URL": settings.REDIS_URL}, timeout=60)

    assert run.returncode == 0, run.stderr
    assert "BTCUSDT: published at sequence" in run.stdout and "ETHUSDT: published at sequence" in run.stdout
    bids, asks = engine_book()
    depth = APIClient().get("/api/pairs/BTCUSDT/depth/", {"limit": 500}).json()
    assert {level["price"]: level["quantity"] for level in depth["bids"]} == bids
    assert {level["price"]: level["quantity"] for level in depth["asks"]} == asks
    assert store().llen("md:BTCUSDT:trades") == min(500, Trade.objects.filter(pair__symbol="BTCUSDT").count())


def test_the_cache_warmup_names_what_it_cannot_do():
    prepare_market()
    env = {**worker_environment(), "REDIS_URL": settings.REDIS_URL}

    unknown = subprocess.run(["scripts/cache-warmup.sh", "--pairs=DOGEUSDT"], cwd=ROOT, capture_output=True,
                             text=True, env=env, timeout=60)
    no_worker = subprocess.run(["scripts/cache-warmup.sh", "--pairs=BTCUSDT", "--timeout=1"], cwd=ROOT,
                               capture_output=True, text=True, env=env, timeout=60)

    assert unknown.returncode != 0 and "unknown pair(s): DOGEUSDT" in unknown.stderr
    assert no_worker.returncode != 0 and "is its shard's matching worker running?" in no_worker.stderr
