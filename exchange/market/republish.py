"""Has each pair's worker write the pair's whole published market data again (book, recent trades, ticker,
klines), and waits for it: `manage.py warm_market_data` (`scripts/cache-warmup.sh`).

The worker publishes a pair's market when it loads it and after every batch, and writes it whole again by itself
when it finds it gone from Redis; this is the operator's way to do it on demand, e.g. before opening a pair to
traffic after Redis was emptied. It goes through the worker, the only writer of the published state, as a control
command in the pair's inbox, so it is applied between two committed batches and never races them."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import cast

import redis

from exchange.errors import DomainError
from exchange.inbox import INBOX_CHANNEL, notify
from exchange.market.contract import book_key, sequence_key, ticker_key, trades_key, written_whole_key
from exchange.models import AuditLog, EngineCommand, TradingPair
from exchange.stores import redis_client

ACTOR = "operator:cache-warmup"


class RepublishFailed(DomainError):
    """A pair that is unknown, or whose worker refused or did not publish it in time."""

    code = "republish_failed"


def republish(symbols: list[str], timeout: float, report: Callable[[str], None]) -> None:
    """Asks the workers of the pairs (all pairs when `symbols` is empty) to publish them whole, and reports each
    as it is published; `RepublishFailed` names what is unknown, refused or still waiting after `timeout` s."""
    found = {pair.symbol: pair for pair in TradingPair.objects.all()}
    unknown = sorted(set(symbols) - set(found))
    if unknown:
        raise RepublishFailed(f"unknown pair(s): {', '.join(unknown)}")
    commands = []
    for symbol in symbols or sorted(found):
        pair = found[symbol]
        commands.append(EngineCommand.objects.create(pair=pair, kind=EngineCommand.Kind.REPUBLISH, actor=ACTOR,
                                                     reason="cache warm-up"))
        AuditLog.objects.create(actor=ACTOR, action="market_data_republish_requested", target=f"pair:{symbol}",
                                details={"pair": symbol})
        notify(INBOX_CHANNEL, str(pair.shard))
    waiting = _wait(commands, timeout, report)
    if waiting:
        raise RepublishFailed(f"no worker published {', '.join(waiting)} within {timeout:g} s: is its shard's"
                              " matching worker running?")


def _wait(commands: list[EngineCommand], timeout: float, report: Callable[[str], None]) -> list[str]:
    """Reports each pair as its worker applies the command; returns the pairs still waiting at the end."""
    store = redis_client(decode_responses=True, timeout=None)
    deadline = time.monotonic() + timeout
    pending = {command.id: command for command in commands}
    while pending and time.monotonic() < deadline:
        done = EngineCommand.objects.filter(id__in=pending).exclude(status=EngineCommand.Status.PENDING)
        for command in done.select_related("pair"):
            pending.pop(command.id)
            if command.status != EngineCommand.Status.APPLIED:
                raise RepublishFailed(f"{command.pair.symbol}: the worker refused: {command.reason}")
            # The worker's publisher writes the pair whole just after the command's batch has committed.
            if not _report(store, command, deadline, report):
                pending[command.id] = command
        time.sleep(0.05)
    return sorted(command.pair.symbol for command in pending.values())


def _report(store: redis.Redis, command: EngineCommand, deadline: float, report: Callable[[str], None]) -> bool:
    """Waits until the pair was written whole after the request, then reports it; False if it was not."""
    symbol, asked_at = command.pair.symbol, command.created_at.timestamp()
    while float(store.get(written_whole_key(symbol)) or 0) < asked_at:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    ticker = json.loads(store.get(ticker_key(symbol)) or "{}")
    sequence = cast(str | None, store.get(sequence_key(symbol)))        # a client that reads text
    report(f"{symbol}: published at sequence {sequence}: {store.hlen(book_key(symbol, 'buy'))}"
           f" bid and {store.hlen(book_key(symbol, 'sell'))} ask levels, {store.llen(trades_key(symbol))} recent"
           f" trades, {ticker.get('trade_count', 0)} trades in 24 h (last {ticker.get('last')})")
    return True
