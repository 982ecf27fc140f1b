"""Websocket market data and order updates (Channels), fed by what the matching worker publishes after each
committed batch (`exchange/market/contract.py`).

`ws/market/<PAIR>/`: the client sends `{"op": "subscribe", "channels": ["depth", "trades", "ticker",
"klines"]}`; it gets a `snapshot` of the whole book at a sequence (and the current `ticker` and `kline`), then an
`update` per batch of the worker (the levels whose total changed, the trades, the 1-minute klines they changed
and the ticker, the sequence before and after, the checksum of the top levels), and a `ticker` when the minute
turns. Should the stream ever skip a batch, the consumer sends a fresh snapshot instead of the update: a
client's book is never silently wrong.

`ws/orders/`: an authenticated user's own order updates (a session, or `Authorization: Token <key>`).

Slow and surplus clients: a client whose socket stays full for WEBSOCKET_SEND_TIMEOUT_SECONDS (it does not read
what it is sent) is dropped with close code 4008, so what waits for it stays bounded and nobody else waits; a
process holding WEBSOCKET_MAX_CONNECTIONS streams refuses more with close code 1013 ("try again later").
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque

import redis.asyncio
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from exchange.market.contract import (
    MARKET_SNAPSHOT,
    MARKET_TICKER,
    MARKET_UPDATE,
    book_key,
    checksum,
    kline_key,
    listening_owners_key,
    market_group,
    orders_group,
    sequence_key,
    sorted_levels,
    ticker_key,
)
from exchange.stores import shared_async_redis
from exchange.trading.pairs import pair_by_symbol

CHANNELS = ("depth", "trades", "ticker", "klines")
CLOSE_UNKNOWN_PAIR = 4004
CLOSE_NOT_AUTHENTICATED = 4001
CLOSE_TOO_SLOW = 4008
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_INTERNAL_ERROR = 1011
HUB_JOIN_SECONDS = 5           # how long a subscription waits for the hub to join the pair's group
MAILBOX_LIMIT = 1000           # publications waiting for one client before it is dropped
log = logging.getLogger(__name__)


class StreamConsumer(AsyncJsonWebsocketConsumer):
    """What every stream of this process shares: the connection cap, and dropping a client that does not read."""

    open_streams = 0          # in this process
    dropped = False

    async def __call__(self, scope, receive, send) -> None:
        self.main_task = asyncio.current_task()
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            if not self.dropped:
                raise                        # the server's own cancellation; a dropped client's simply ends
        finally:                             # however the stream ends: a failed connect, a cancellation
            self._uncount()
            self.stop_tasks()

    def stop_tasks(self) -> None:
        """Stops the tasks the stream started besides its own."""

    async def websocket_connect(self, message: dict) -> None:
        if StreamConsumer.open_streams >= settings.WEBSOCKET_MAX_CONNECTIONS:
            await self.accept()
            await self.send_json({"type": "error", "code": "too_many_connections",
                                  "message": "this server holds all the streams it can; try again later"})
            await self.close(CLOSE_TRY_AGAIN_LATER)
            return
        StreamConsumer.open_streams += 1
        self.counted = True
        send_watchdog.watch()
        await super().websocket_connect(message)

    async def websocket_disconnect(self, message: dict) -> None:
        self._uncount()
        await super().websocket_disconnect(message)

    def _uncount(self) -> None:
        if getattr(self, "counted", False):
            StreamConsumer.open_streams -= 1
            self.counted = False

    async def send_or_drop(self, text: str) -> None:
        """Sends; the watchdog drops the client if the send waits too long (the server's send waits while the
        client's socket is full)."""
        if self.dropped:
            return
        send_watchdog.waiting[self] = time.monotonic()
        try:
            await self.base_send({"type": "websocket.send", "text": text})   # what `self.send` does, one call less
        finally:
            send_watchdog.waiting.pop(self, None)

    async def drop_slow_client(self) -> None:
        if self.dropped:
            return
        log.warning("websocket client dropped: it does not read", extra={
            "event": "websocket_client_dropped", "path": self.scope.get("path", "")})
        await self.end_stream(CLOSE_TOO_SLOW)

    async def end_stream(self, code: int) -> None:
        """Closes the stream from the server's side and ends its application (the server closes the connection)."""
        self.dropped = True
        await self.leave_groups()
        try:          # the close frame too waits for room in the socket: give it a moment, no more
            async with asyncio.timeout(1):
                await self.close(code)
        except TimeoutError:
            pass
        self._uncount()
        if self.main_task is not None:
            self.main_task.cancel()

    async def leave_groups(self) -> None:
        """Stops the messages of the groups the stream joined."""

    async def send_json(self, content, close: bool = False) -> None:
        await self.send_or_drop(await self.encode_json(content))
        if close:
            await self.close()


class SendWatchdog:
    """Drops the streams of this process whose send has waited longer than WEBSOCKET_SEND_TIMEOUT_SECONDS, so what
    waits for a client that does not read stays bounded and nobody else waits. One look at the waiting sends
    every CHECK_SECONDS, instead of a timer armed and cancelled around every send: those timers and the setting
    read for each were a fifth of a market data process's time (py-spy, 100 clients)."""

    CHECK_SECONDS = 0.25

    def __init__(self) -> None:
        self.waiting: dict[StreamConsumer, float] = {}      # a stream whose send waits -> since when
        self.watching: asyncio.Task | None = None
        self.drops: set[asyncio.Task] = set()

    def watch(self) -> None:
        """Makes sure the watchdog runs on this event loop (a stream calls it as it opens)."""
        if self.watching is None or self.watching.done() or self.watching.get_loop() is not asyncio.get_running_loop():
            self.waiting.clear()
            self.watching = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.CHECK_SECONDS)
            waited_since = time.monotonic() - settings.WEBSOCKET_SEND_TIMEOUT_SECONDS
            for stream, since in list(self.waiting.items()):
                if since < waited_since:
                    del self.waiting[stream]
                    drop = asyncio.create_task(stream.drop_slow_client())
                    self.drops.add(drop)                      # kept: a task only weakly held may vanish
                    drop.add_done_callback(self.drops.discard)


send_watchdog = SendWatchdog()


def market_store() -> redis.asyncio.Redis:
    """The published state, read by this process's websocket consumers (one event loop, one pool)."""
    return shared_async_redis(decode_responses=True)


async def read_snapshot(symbol: str) -> tuple[dict, dict | None, dict | None]:
    """The published book of the pair and the sequence it is at, its ticker and its newest kline, read in one
    transaction."""
    async with market_store().pipeline(transaction=True) as pipeline:
        pipeline.hgetall(book_key(symbol, "buy"))
        pipeline.hgetall(book_key(symbol, "sell"))
        pipeline.get(sequence_key(symbol))
        pipeline.get(ticker_key(symbol))
        pipeline.get(kline_key(symbol))
        bids, asks, sequence, ticker, kline = await pipeline.execute()
    bids, asks = sorted_levels(bids, "buy"), sorted_levels(asks, "sell")
    snapshot = {"type": "snapshot", "pair": symbol, "sequence": int(sequence or 0), "bids": bids, "asks": asks,
                "checksum": checksum(bids, asks)}
    return snapshot, json.loads(ticker) if ticker else None, json.loads(kline) if kline else None


ENCODED_KEPT = 256
_encoded_updates: dict[tuple, str] = {}


def encoded_update(event: dict, channels: frozenset[str]) -> str:
    """The update as the clients of these channels get it, encoded once per process: every client of the pair
    gets the same text (encoding it per client was most of the fan-out's time)."""
    key = (event["pair"], event["sequence"], channels)
    text = _encoded_updates.get(key)
    if text is None:
        if len(_encoded_updates) >= ENCODED_KEPT:
            _encoded_updates.clear()
        update = {"type": "update", "pair": event["pair"], "previous_sequence": event["previous_sequence"],
                  "sequence": event["sequence"], "committed_at": event["committed_at"],
                  "published_at": event["published_at"]}
        if "depth" in channels:
            update.update(bids=event["bids"], asks=event["asks"], checksum=event["checksum"])
        if "trades" in channels:
            update["trades"] = event["trades"]
        if "klines" in channels:
            update["klines"] = event["klines"]
        if "ticker" in channels and "ticker" in event:
            update["ticker"] = event["ticker"]
        text = _encoded_updates[key] = json.dumps(update)
    return text


class MarketHub:
    """This process's one reader of each pair's market data: it receives a publication once from the channel layer
    and posts it to every client of the pair. Through Channels' own dispatch each client decoded every message
    anew and closed old database connections in a worker thread before handling it: 136 µs a message a client,
    which capped a process at about 5,000 messages/s (`make benchmark-trading SECTION=marketdata`)."""

    def __init__(self) -> None:
        self.clients: dict[str, set[MarketDataConsumer]] = defaultdict(set)
        self.joined: dict[str, asyncio.Event] = {}
        self.relays: set[asyncio.Task] = set()

    async def add(self, client: MarketDataConsumer) -> None:
        """From now on the client is posted the pair's publications (once the hub has joined the pair's group)."""
        self.clients[client.symbol].add(client)
        if client.symbol not in self.joined:
            self.joined[client.symbol] = asyncio.Event()
            self.relays.add(asyncio.create_task(self._relay(client.symbol)))   # kept: a task only weakly held ends
        try:          # past this, the snapshot is sent anyway: updates follow once joined, a gap resyncs
            async with asyncio.timeout(HUB_JOIN_SECONDS):
                await self.joined[client.symbol].wait()
        except TimeoutError:
            pass

    def discard(self, client: MarketDataConsumer) -> None:
        self.clients[client.symbol].discard(client)

    async def _relay(self, symbol: str) -> None:
        layer = get_channel_layer()
        while True:
            try:
                channel = await layer.new_channel("market-hub.")
                await layer.group_add(market_group(symbol), channel)
                break
            except Exception:  # noqa: BLE001 - Redis away: try again; the pair's clients wait for it
                log.exception("market data relay cannot join", extra={"event": "market_relay_error", "pair": symbol})
                await asyncio.sleep(1)
        self.joined[symbol].set()
        while True:
            try:
                event = await layer.receive(channel)
            except Exception:  # noqa: BLE001 - the relay must outlive a layer error; clients resync on the gap
                log.exception("market data relay error", extra={"event": "market_relay_error", "pair": symbol})
                await asyncio.sleep(1)
                continue
            for client in list(self.clients[symbol]):
                client.post(event)


market_hub = MarketHub()


class MarketDataConsumer(StreamConsumer):
    """One client's subscription to one pair's depth, trades, ticker and klines.

    Everything the client is sent goes through its mailbox, handled by one task in order: the hub's publications
    and its own subscriptions (a snapshot, then only the updates after it). A mailbox that holds more than
    MAILBOX_LIMIT publications belongs to a client that does not keep up, and the client is dropped."""

    channel_layer_alias = "market data comes through the hub"     # no channel of its own on the layer

    async def connect(self) -> None:
        self.symbol = self.scope["url_route"]["kwargs"]["pair"].upper()
        self.channels: set[str] = set()
        self.sequence: int | None = None
        self.mailbox: deque = deque()
        self.mail = asyncio.Event()
        self.postman: asyncio.Task | None = None
        await self.accept()
        if await database_sync_to_async(pair_by_symbol)(self.symbol) is None:
            await self.send_error("unknown_pair", f"there is no pair {self.symbol!r}")
            await self.close(CLOSE_UNKNOWN_PAIR)
            return
        self.postman = asyncio.create_task(self._deliver())

    async def disconnect(self, code: int) -> None:
        await self.leave_groups()

    def stop_tasks(self) -> None:
        postman = getattr(self, "postman", None)
        if postman is not None and postman is not asyncio.current_task():
            postman.cancel()

    async def leave_groups(self) -> None:
        self.channels = set()
        if hasattr(self, "symbol"):
            market_hub.discard(self)

    def post(self, event: dict) -> None:
        """A publication of the pair, from the hub."""
        if len(self.mailbox) >= MAILBOX_LIMIT:
            self.mailbox.clear()
            self.mailbox.append({"type": "drop"})
        self.mailbox.append(event)
        self.mail.set()

    async def receive_json(self, content: object, **kwargs) -> None:
        if not isinstance(content, dict) or content.get("op") not in ("subscribe", "unsubscribe"):
            await self.send_error("invalid_message", 'send {"op": "subscribe", "channels": ["depth", "trades"]}')
            return
        channels = content.get("channels", list(CHANNELS))
        if not isinstance(channels, list) or not channels or not set(channels) <= set(CHANNELS):
            await self.send_error("invalid_channels", f"channels is a list of {', '.join(CHANNELS)}")
            return
        if content["op"] == "unsubscribe":
            self.channels -= set(channels)
            if not self.channels:
                market_hub.discard(self)
            return
        if self.postman is None:
            return
        self.channels |= set(channels)
        await market_hub.add(self)
        self.mailbox.append({"type": "subscribe"})
        self.mail.set()

    async def _deliver(self) -> None:
        """The mailbox's task: sends what is posted, in order. Should sending fail (Redis away for a snapshot,
        say), the stream is closed with 1011 rather than left silent: the client reconnects and starts over."""
        try:
            await self._deliver_mail()
        except Exception:  # noqa: BLE001 - any failure: the client is told by the close and reconnects
            log.exception("market data stream failed", extra={"event": "market_stream_failed", "pair": self.symbol})
            await self.end_stream(CLOSE_INTERNAL_ERROR)

    async def _deliver_mail(self) -> None:
        while not self.dropped:
            if not self.mailbox:
                self.mail.clear()
                await self.mail.wait()
                continue
            event = self.mailbox.popleft()
            kind = event["type"]
            if kind == MARKET_UPDATE:
                await self.market_update(event)
            elif kind == MARKET_SNAPSHOT:
                await self.market_snapshot(event)
            elif kind == MARKET_TICKER:
                await self.market_ticker(event)
            elif kind == "subscribe":
                await self.send_snapshot()
                await self.send_json({"type": "subscribed", "pair": self.symbol, "channels": sorted(self.channels)})
            elif kind == "drop":
                await self.drop_slow_client()

    async def send_snapshot(self) -> None:
        snapshot, ticker, kline = await read_snapshot(self.symbol)
        self.sequence = snapshot["sequence"]
        if "depth" in self.channels:
            await self.send_json(snapshot)
        if "ticker" in self.channels and ticker is not None:
            await self.send_json({"type": "ticker", "pair": self.symbol, "ticker": ticker})
        if "klines" in self.channels and kline is not None:
            await self.send_json({"type": "kline", "pair": self.symbol, "kline": kline})

    async def market_update(self, event: dict) -> None:
        """A batch of the worker, published after its commit."""
        if self.sequence is None or event["sequence"] <= self.sequence:
            return                               # the snapshot sent already holds it
        if event["previous_sequence"] != self.sequence:
            await self.send_snapshot()           # a batch was missed on the way: start over from the state
            return
        self.sequence = event["sequence"]
        await self.send_or_drop(encoded_update(event, frozenset(self.channels)))

    async def market_snapshot(self, event: dict) -> None:
        """The worker (re)started serving the pair, or wrote it whole again: its whole book, which replaces the
        client's (unless the client already has a newer one, read from Redis on a gap)."""
        if self.sequence is None or event["sequence"] < self.sequence:
            return
        self.sequence = event["sequence"]
        if "depth" in self.channels:
            await self.send_json({key: event[key] for key in ("pair", "sequence", "bids", "asks", "checksum")}
                                 | {"type": "snapshot"})
        if "ticker" in self.channels:
            await self.send_json({"type": "ticker", "pair": self.symbol, "ticker": event["ticker"]})

    async def market_ticker(self, event: dict) -> None:
        """The minute turned: the ticker's window moved."""
        if self.sequence is not None and "ticker" in self.channels:
            await self.send_json({"type": "ticker", "pair": self.symbol, "ticker": event["ticker"]})

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})


class OrderUpdatesConsumer(StreamConsumer):
    """One user's own order updates; nobody else's ever reach it."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.send_json({"type": "error", "code": "not_authenticated",
                                  "message": "log in, or send Authorization: Token <key>"})
            await self.close(CLOSE_NOT_AUTHENTICATED)
            return
        self.owner = user.pk
        await self.channel_layer.group_add(orders_group(self.owner), self.channel_name)
        await market_store().hincrby(listening_owners_key(), str(self.owner), 1)
        await self.send_json({"type": "subscribed", "channels": ["orders"]})

    async def disconnect(self, code: int) -> None:
        await self.leave_groups()

    async def leave_groups(self) -> None:
        if hasattr(self, "owner"):
            owner = self.owner
            del self.owner
            await market_store().hincrby(listening_owners_key(), str(owner), -1)
            await self.channel_layer.group_discard(orders_group(owner), self.channel_name)

    async def receive_json(self, content: object, **kwargs) -> None:
        await self.send_json({"type": "error", "code": "invalid_message", "message": "this stream only sends"})

    async def orders_update(self, event: dict) -> None:
        await self.send_json({"type": "orders", "orders": event["orders"]})
