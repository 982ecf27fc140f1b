"""Market data over websockets, with real clients against the websocket server and a real worker: a client that
keeps a book from the snapshot and the updates ends with exactly the book the engine holds (levels and checksum), never
applies an update out of sequence, not even across a worker killed with SIGKILL, and a user's order updates
reach that user alone."""
import asyncio
import json
import subprocess
import threading
from decimal import Decimal
from pathlib import Path

import pytest
import websockets
from django.conf import settings
from django.db import connection
from django.db.models import F, Sum

from exchange.market.contract import checksum, sorted_levels
from exchange.models import Order
from exchange.serving.processes import websocket_server_argv
from tests.integration.conftest import (
    ROOT,
    free_port,
    inbox_empty,
    wait_for_port,
    wait_until,
    worker_environment,
)
from tests.integration.order_stream import feed, make_stream, prepare_market

pytestmark = pytest.mark.django_db(transaction=True)



def start_websocket_server(log: Path | None = None, **env: str):
    """A websocket server with extra settings; what it logs goes to `log` if given (else nowhere)."""
    port = free_port()
    output = open(log, "ab") if log is not None else subprocess.DEVNULL   # noqa: SIM115 - the child holds it
    server = subprocess.Popen(websocket_server_argv(port), cwd=ROOT,
                              env={**worker_environment(), "REDIS_URL": settings.REDIS_URL, "DB_CONN_MAX_AGE": "0",
                                   **env},
                              stdout=output, stderr=subprocess.STDOUT)
    if log is not None:
        output.close()
    wait_for_port(port, server, "the websocket server")
    return server, f"ws://127.0.0.1:{port}"


@pytest.fixture
def websocket_server():
    server, url = start_websocket_server()
    yield url
    server.terminate()
    server.wait(10)


class BookKeeper:
    """What a careful client does: a book from the snapshot, each update applied only in sequence."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.sequence: int | None = None
        self.snapshots = 0
        self.updates = 0

    def take(self, message: dict) -> None:
        if message["type"] == "snapshot":
            self.bids, self.asks = dict(message["bids"]), dict(message["asks"])
            self.sequence, self.snapshots = message["sequence"], self.snapshots + 1
            assert self.checksum() == message["checksum"]
        elif message["type"] == "update":
            assert message["previous_sequence"] == self.sequence, "an update out of sequence"
            for side, levels in (("bids", self.bids), ("asks", self.asks)):
                for price, quantity in message[side]:
                    if Decimal(quantity):
                        levels[price] = quantity
                    else:
                        levels.pop(price, None)
            self.sequence, self.updates = message["sequence"], self.updates + 1
            assert self.checksum() == message["checksum"], "the book differs from the worker's"

    def checksum(self) -> int:
        return checksum(sorted_levels(self.bids, "buy"), sorted_levels(self.asks, "sell"))


async def keep_book(url: str, keeper: BookKeeper, until) -> None:
    async with websockets.connect(f"{url}/ws/market/BTCUSDT/") as client:
        await client.send(json.dumps({"op": "subscribe", "channels": ["depth", "trades"]}))
        while not until():
            try:
                keeper.take(json.loads(await asyncio.wait_for(client.recv(), 0.2)))
            except TimeoutError:
                continue


def engine_book() -> tuple[dict[str, str], dict[str, str]]:
    """The resting book as the database holds it, level by level."""
    sides = {}
    for side in ("buy", "sell"):
        levels = (Order.objects.filter(pair__symbol="BTCUSDT", side=side, status__in=Order.RESTING_STATUSES)
                  .values("price").annotate(total=Sum(F("quantity") - F("filled_quantity"))))
        sides[side] = {f"{level['price'].normalize():f}": f"{level['total'].normalize():f}" for level in levels}
    return sides["buy"], sides["sell"]


def test_a_client_keeps_exactly_the_engines_book_across_a_killed_worker(websocket_server, worker):
    users = prepare_market()
    stream = make_stream(8_000, seed=21)
    worker.start()
    worker.wait_ready()
    keeper, finished = BookKeeper(), []

    async def scenario() -> None:
        client = asyncio.create_task(keep_book(websocket_server, keeper, lambda: bool(finished)))
        await asyncio.sleep(0.5)
        await asyncio.get_running_loop().run_in_executor(None, feed_and_kill, stream, users)
        await asyncio.sleep(1.0)                 # the last batches' publication
        finished.append(True)
        await client

    def feed_and_kill(stream, users) -> None:
        """In a thread of its own (with its own connection, closed at the end): the stream is fed while
        another thread kills the worker half way through and starts it again."""
        killer = threading.Thread(target=kill_half_way, args=(len(stream) // 2,))
        killer.start()
        try:
            feed(stream, users, chunk=50, pause=0.01)
            killer.join()
            wait_until(inbox_empty, 60, 0.1,
                       "the worker to take every order")
        finally:
            connection.close()

    def kill_half_way(orders: int) -> None:
        try:
            wait_until(lambda: Order.objects.count() >= orders, 60, 0.05, "half the stream")
            worker.kill()
            worker.start()
        finally:
            connection.close()

    asyncio.run(scenario())

    bids, asks = engine_book()
    assert (keeper.bids, keeper.asks) == (bids, asks)
    assert keeper.updates > 50 and keeper.snapshots >= 2     # the restarted worker's snapshot replaced the book


def test_order_updates_reach_their_owner_alone(websocket_server, worker):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    users = prepare_market()
    alice, bob = users[1], users[2]
    tokens = {user: Token.objects.get_or_create(user=user)[0].key for user in (alice, bob)}
    worker.start()
    worker.wait_ready()
    received: dict[str, list[dict]] = {"alice": [], "bob": []}

    async def listen(name: str, token: str, ready: asyncio.Event, done: asyncio.Event) -> None:
        async with websockets.connect(f"{websocket_server}/ws/orders/",
                                      additional_headers={"Authorization": f"Token {token}"}) as client:
            assert json.loads(await client.recv())["type"] == "subscribed"
            ready.set()
            while not done.is_set():
                try:
                    received[name].append(json.loads(await asyncio.wait_for(client.recv(), 0.2)))
                except TimeoutError:
                    continue

    def place() -> list[int]:
        """Alice sells, Bob buys from her: each of their orders fills."""
        try:
            ids = []
            for user, side in ((alice, "sell"), (bob, "buy")):
                client = APIClient()
                client.force_authenticate(user)
                ids.append(client.post("/api/orders/", {"pair": "BTCUSDT", "side": side, "price": "50000.00",
                                                        "quantity": "0.001"}, format="json").json()["id"])
            wait_until(inbox_empty, 30, 0.05, "the worker")
            return ids
        finally:
            connection.close()

    async def scenario() -> list[int]:
        ready, done = (asyncio.Event(), asyncio.Event()), asyncio.Event()
        listeners = [asyncio.create_task(listen(name, tokens[user], flag, done))
                     for (name, user), flag in zip((("alice", alice), ("bob", bob)), ready, strict=True)]
        await asyncio.gather(*(flag.wait() for flag in ready))
        ids = await asyncio.get_running_loop().run_in_executor(None, place)
        await asyncio.sleep(1.0)
        done.set()
        await asyncio.gather(*listeners)
        return ids

    alices_order, bobs_order = asyncio.run(scenario())

    seen = {name: [(order["id"], order["status"]) for message in messages for order in message["orders"]]
            for name, messages in received.items()}
    assert {order_id for order_id, _ in seen["alice"]} == {alices_order}
    assert {order_id for order_id, _ in seen["bob"]} == {bobs_order}
    assert seen["alice"][-1] == (alices_order, "filled") and seen["bob"][-1] == (bobs_order, "filled")


def test_a_stream_without_credentials_or_for_an_unknown_pair_says_so(websocket_server):
    async def first_message(path: str) -> tuple[dict, int | None]:
        async with websockets.connect(f"{websocket_server}{path}") as client:
            message = json.loads(await client.recv())
            try:
                await asyncio.wait_for(client.recv(), 2)
            except websockets.ConnectionClosed as closed:
                return message, closed.rcvd.code if closed.rcvd else None
            return message, None

    async def malformed_subscription() -> dict:
        async with websockets.connect(f"{websocket_server}/ws/market/BTCUSDT/") as client:
            await client.send(json.dumps({"op": "subscribe", "channels": ["everything"]}))
            return json.loads(await client.recv())

    prepare_market()
    assert asyncio.run(first_message("/ws/orders/")) == (
        {"type": "error", "code": "not_authenticated", "message": "log in, or send Authorization: Token <key>"}, 4001)
    message, code = asyncio.run(first_message("/ws/market/NOPE/"))
    assert (message["code"], code) == ("unknown_pair", 4004)
    assert asyncio.run(malformed_subscription())["code"] == "invalid_channels"
