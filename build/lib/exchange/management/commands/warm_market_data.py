"""`manage.py warm_market_data --pairs=BTCUSDT,ETHUSDT` (`scripts/cache-warmup.sh`): has each pair's worker
write the pair's whole published market data again (book, recent trades, ticker, klines) and waits for it.

The worker publishes a pair's market when it loads it and after every batch, and writes it whole again by itself
when it finds it gone from Redis; this is the operator's way to do it on demand, e.g. before opening a pair to
traffic after Redis was emptied. It goes through the worker, the only writer of the published state, as a control
command in the pair's inbox, so it is applied between two committed batches and never races them."""
from __future__ import annotations

import json
import time

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.inbox import INBOX_CHANNEL, notify
from exchange.market_feed import book_key, sequence_key, ticker_key, trades_key, written_whole_key
from exchange.models import AuditLog, EngineCommand, TradingPair

ACTOR = "operator:cache-warmup"


class Command(BaseCommand):
    help = "Have the matching workers publish the pairs' whole market data again (book, trades, ticker), and wait."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pairs", default="", help="comma-separated symbols; all pairs when absent")
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the workers (30)")

    def handle(self, *args, pairs: str, timeout: float, **options) -> None:
        symbols = [symbol.strip().upper() for symbol in pairs.split(",") if symbol.strip()]
        found = {pair.symbol: pair for pair in TradingPair.objects.all()}
        unknown = sorted(set(symbols) - set(found))
        if unknown:
            raise CommandError(f"unknown pair(s): {', '.join(unknown)}")
        commands = []
        for symbol in symbols or sorted(found):
            pair = found[symbol]
            commands.append(EngineCommand.objects.create(pair=pair, kind=EngineCommand.Kind.REPUBLISH, actor=ACTOR,
                                                         reason="cache warm-up"))
            AuditLog.objects.create(actor=ACTOR, action="market_data_republish_requested", target=f"pair:{symbol}",
                                    details={"pair": symbol})
            notify(INBOX_CHANNEL, str(pair.shard))
        waiting = self.wait(commands, timeout)
        if waiting:
            raise CommandError(f"no worker published {', '.join(waiting)} within {timeout:g} s: is its shard's"
                               " matching worker running?")

    def wait(self, commands: list[EngineCommand], timeout: float) -> list[str]:
        """Reports each pair as its worker applies the command; returns the pairs still waiting at the end."""
        store = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        deadline = time.monotonic() + timeout
        pending = {command.id: command for command in commands}
        while pending and time.monotonic() < deadline:
            done = EngineCommand.objects.filter(id__in=pending).exclude(status=EngineCommand.Status.PENDING)
            for command in done.select_related("pair"):
                pending.pop(command.id)
                if command.status != EngineCommand.Status.APPLIED:
                    raise CommandError(f"{command.pair.symbol}: the worker refused: {command.reason}")
                # The worker's publisher writes the pair whole just after the command's batch has committed.
                if not self.report(store, command, deadline):
                    pending[command.id] = command
            time.sleep(0.05)
        return sorted(command.pair.symbol for command in pending.values())

    def report(self, store: redis.Redis, command: EngineCommand, deadline: float) -> bool:
        """Waits until the pair was written whole after the request, then reports it; False if it was not."""
        symbol, asked_at = command.pair.symbol, command.created_at.timestamp()
        while float(store.get(written_whole_key(symbol)) or 0) < asked_at:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        ticker = json.loads(store.get(ticker_key(symbol)) or "{}")
        self.stdout.write(
            f"{symbol}: published at sequence {store.get(sequence_key(symbol))}: {store.hlen(book_key(symbol, 'buy'))}"
            f" bid and {store.hlen(book_key(symbol, 'sell'))} ask levels, {store.llen(trades_key(symbol))} recent"
            f" trades, {ticker.get('trade_count', 0)} trades in 24 h (last {ticker.get('last')})")
        return True
