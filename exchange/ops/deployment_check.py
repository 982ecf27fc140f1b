"""The deployment guide's success criteria, measured against a running instance (`make validate-deployment`).

Each criterion is measured, printed with its figure and judged PASS or FAIL (or SKIP when the operator left it
out); any FAIL makes the run fail. What each one does:

- **tests**: the integration tests (or the whole suite), run from this checkout against its configured server;
- **error rate, latency P95, throughput**: the open-loop load test (`benchmarks/http_load.py`) at `--rate` for
  `--duration`: its error rate, its P95 of single-order placements, the rate it achieved;
- **circuit breakers**: no pair's breaker open or ever tripped (`/admin/circuit-breaker/status`);
- **deadlocks**: `pg_stat_database.deadlocks` of the database, since its statistics were reset;
- **monitoring**: `/metrics` carries the web's, every serving shard's worker's and Celery's series, and the
  alert rules are loaded (asked of `--prometheus-url`) or at least valid (`promtool check rules`);
- **price-time priority and trades**: on a pair of its own (`--check-pair`, created if missing, halted again
  after), with the adaptive book executing at 100% and the legacy one checking it, a crafted sequence whose
  trades are known (better price first, then earlier time, a partial fill, the rest cancelled) and a short
  random stream whose trades must each be at the maker's price, within the taker's limit, add up to every
  order's filled quantity, leave the book uncrossed, and cause no divergence between the books;
- **rollback**: that pair rolled back to the legacy book, and the worker seen to apply it.

Calls go through the instance's HTTP API; the database is read for what only it knows (the deadlocks, the
check pair's trades) and written only for the validator's own users and check pair.
"""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Sum
from rest_framework.authtoken.models import Token

from exchange.models import Divergence, Order, Trade, TradingPair

ROOT = settings.BASE_DIR
GUIDE_ALERTS = ("HighLatency", "CircuitBreakerOpen", "HighErrorRate")
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Criterion:
    name: str
    verdict: str
    figure: str

    def line(self) -> str:
        return f"{self.verdict:<4}  {self.name:<28} {self.figure}"


@dataclass
class Options:
    base_url: str = "http://localhost:8080"
    token: str = ""
    tests: str = "integration"          # integration, all or none
    duration: str = "60s"
    rate: float = 10_000.0
    min_throughput: float = 10_000.0
    max_p95_ms: float = 10.0
    max_error_rate: float = 0.0001
    load_pairs: str = "BTCUSDT,ETHUSDT"
    check_pair: str = "CHECKUSDT"
    stream_orders: int = 200
    prometheus_url: str = ""
    apply_timeout: float = 30.0
    seed: int = 7
    log: Callable[[str], None] = field(default=print)


class Api:
    """The instance's HTTP API with one token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.session = base_url.rstrip("/"), requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, body: dict | None = None, **params) -> requests.Response:
        return self.session.request(method, self.base_url + path, json=body, params=params or None, timeout=30)

    def ok(self, method: str, path: str, body: dict | None = None, **params):
        response = self.call(method, path, body, **params)
        if response.status_code >= 400:
            raise ValidationFailed(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()


class ValidationFailed(Exception):
    """A criterion could not be measured; the message says why (it is that criterion's FAIL)."""


def validate(options: Options) -> list[Criterion]:
    staff = Api(options.base_url, options.token or local_token("deployment-validator", staff=True))
    results = [measure("automated tests", lambda: automated_tests(options))]
    results += load_criteria(options)
    results.append(measure("circuit breakers", lambda: circuit_breakers(staff)))
    results.append(measure("deadlocks", deadlocks))
    results.append(measure("monitoring", lambda: monitoring(options)))
    results += check_pair_criteria(options, staff)
    return results


def measure(name: str, check: Callable[[], tuple[str, str]]) -> Criterion:
    try:
        verdict, figure = check()
    except (ValidationFailed, requests.RequestException, OSError) as error:
        verdict, figure = FAIL, f"not measured: {error}"
    return Criterion(name, verdict, figure)


def local_token(username: str, staff: bool = False) -> str:
    """A token of a user of this checkout's database (the local instance's), created when missing."""
    user, _ = User.objects.get_or_create(username=username, defaults={"is_staff": staff})
    if staff and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return Token.objects.get_or_create(user=user)[0].key


# ---- the criteria ----------------------------------------------------------------------------------------
def automated_tests(options: Options) -> tuple[str, str]:
    if options.tests == "none":
        return SKIP, "left out (--tests=none)"
    target = ["tests/integration"] if options.tests == "integration" else []
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *target], cwd=ROOT,
                         capture_output=True, text=True)
    summary = next((line for line in reversed(run.stdout.splitlines()) if " in " in line), run.stdout[-200:])
    return (PASS if run.returncode == 0 else FAIL), f"{options.tests}: {summary.strip('= ')}"


def load_criteria(options: Options) -> list[Criterion]:
    try:
        figures = load_test(options)
    except ValidationFailed as error:
        return [Criterion(name, FAIL, f"not measured: {error}")
                for name in ("error rate", "latency P95", "throughput")]
    achieved = figures["achieved_per_s"]
    return [
        Criterion("error rate", PASS if figures["error_rate"] < options.max_error_rate else FAIL,
                  f"{figures['error_rate']:.4%} of {figures['answered']} answers (< {options.max_error_rate:.4%})"),
        Criterion("latency P95", PASS if figures["p95_ms"] < options.max_p95_ms else FAIL,
                  f"{figures['p95_ms']} ms placing single orders (< {options.max_p95_ms:g} ms)"),
        Criterion("throughput", PASS if achieved >= options.min_throughput else FAIL,
                  f"{achieved:g} orders/s achieved of {figures['rate']:g} offered (>= {options.min_throughput:g})"),
    ]


def load_test(options: Options) -> dict:
    argv = [sys.executable, "-m", "benchmarks.http_load", "--json", "--duration", options.duration,
            "--rate", f"{options.rate:g}", "--base-url", options.base_url, "--pairs", options.load_pairs,
            "--max-p95-ms", f"{options.max_p95_ms:g}", "--max-error-rate", f"{options.max_error_rate:g}"]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    for line in reversed(run.stdout.splitlines()):
        if line.startswith("{"):
            figures = json.loads(line)
            options.log(f"load test: {figures['achieved_per_s']:g}/s, p95 {figures['p95_ms']} ms, "
                        f"errors {figures['error_rate']:.4%}")
            return figures
    raise ValidationFailed(f"the load test gave no figures: {(run.stderr or run.stdout).strip()[-300:]}")


def circuit_breakers(staff: Api) -> tuple[str, str]:
    breakers = staff.ok("GET", "/admin/circuit-breaker/status")
    tripped = [f"{b['pair']} {b['breaker_state']} ({b['breaker_trips']} trips)" for b in breakers
               if b["breaker_state"] != "closed" or b["breaker_trips"]]
    if tripped:
        return FAIL, "; ".join(tripped)
    return PASS, f"all {len(breakers)} closed, none tripped"


def deadlocks() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks, stats_reset FROM pg_stat_database WHERE datname = current_database()")
        count, reset = cursor.fetchone()
    since = f"since {reset:%Y-%m-%d %H:%M}" if reset else "since the server's statistics began"
    return (PASS if count == 0 else FAIL), f"{count} in database {connection.settings_dict['NAME']} {since}"


def monitoring(options: Options) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {settings.METRICS_TOKEN}"} if settings.METRICS_TOKEN else {}
    response = requests.get(options.base_url.rstrip("/") + "/metrics", headers=headers, timeout=30)
    if response.status_code != 200:
        return FAIL, f"/metrics answered HTTP {response.status_code}"
    text = response.text
    shards = sorted(set(TradingPair.objects.filter(status=TradingPair.Status.TRADING)
                        .values_list("shard", flat=True)))
    processes = set(re.findall(r'process="([^":]+)', text))
    missing = [name for name in ("web", *(f"worker-{shard}" for shard in shards), "celery-worker", "celery-beat")
               if name not in processes]
    if not re.search(r'^trading_orders_total\{', text, re.MULTILINE):
        missing.append("the trading series (trading_orders_total)")
    rules_verdict, rules = alert_rules(options)
    figure = (f"series of web, {len(shards)} worker(s), Celery present" if not missing
              else f"no series from {', '.join(missing)}") + f"; {rules}"
    return (PASS if not missing and rules_verdict == PASS else FAIL), figure


def alert_rules(options: Options) -> tuple[str, str]:
    if options.prometheus_url:
        answer = requests.get(options.prometheus_url.rstrip("/") + "/api/v1/rules", timeout=30).json()
        loaded = {rule["name"] for group in answer["data"]["groups"] for rule in group["rules"]}
        absent = [name for name in GUIDE_ALERTS if name not in loaded]
        return ((FAIL, f"Prometheus lacks {', '.join(absent)}") if absent
                else (PASS, f"{len(loaded)} rules loaded in Prometheus"))
    promtool = shutil.which("promtool")
    if promtool is None:
        return FAIL, "rules not checked: give --prometheus-url, or install promtool"
    run = subprocess.run([promtool, "check", "rules", "alerts.yml"], cwd=ROOT / "deploy" / "prometheus",
                         capture_output=True, text=True)
    found = (run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr.strip()).strip()
    return ((PASS, f"deploy/prometheus/alerts.yml valid ({found}); no --prometheus-url to ask what is loaded")
            if run.returncode == 0 else (FAIL, f"promtool: {found}"))


# ---- the check pair: priority, trades, rollback ----------------------------------------------------------
def check_pair_criteria(options: Options, staff: Api) -> list[Criterion]:
    names = ("price-time priority", "trade correctness", "rollback procedure")
    try:
        pair = check_pair(options.check_pair)
        traders = {name: Api(options.base_url, local_token(f"validator-{name}")) for name in ("a", "b", "c")}
        migrate_to_full(staff, pair, options)
        priority = measure(names[0], lambda: crafted_sequence(pair, traders))
        trades = measure(names[1], lambda: random_stream(pair, traders, options))
        rollback = measure(names[2], lambda: rolled_back(staff, pair, options))
    except ValidationFailed as error:
        return [Criterion(name, FAIL, f"not measured: {error}") for name in names]
    finally:
        TradingPair.objects.filter(symbol=options.check_pair).update(status=TradingPair.Status.HALTED)
    return [priority, trades, rollback]


def check_pair(symbol: str) -> TradingPair:
    """The validator's own pair, trading, its book emptied of any earlier run's orders."""
    base, quote = symbol[:-4], symbol[-4:]
    pair, _ = TradingPair.objects.get_or_create(symbol=symbol, defaults={
        "base_asset": base, "quote_asset": quote, "tick_size": Decimal("0.01"), "lot_size": Decimal("0.001")})
    if pair.status != TradingPair.Status.TRADING:
        pair.status = TradingPair.Status.TRADING
        pair.save(update_fields=["status", "updated"])
    return pair


def migrate_to_full(staff: Api, pair: TradingPair, options: Options) -> None:
    """The adaptive book executes every order of the pair, the legacy one checks each (migrating at 100%)."""
    status = pair_status(staff, pair.symbol)
    if status["state"] in ("pending", "running", "paused") or status["mode"] != "legacy_only":
        staff.ok("POST", "/admin/migration/rollback", {"pair": pair.symbol, "reason": "deployment validation"})
        wait_for(staff, pair.symbol, lambda s: s["mode"] == "legacy_only" and s["applied"], options)
    staff.ok("POST", "/admin/migration/start", {"pair": pair.symbol, "target_percentage": 100})
    staff.ok("POST", "/admin/migration/percentage", {"pair": pair.symbol, "percentage": 100})
    wait_for(staff, pair.symbol, lambda s: s["mode"] == "migrating" and s["current_percentage"] == 100
             and s["applied"], options)


def crafted_sequence(pair: TradingPair, traders: dict[str, Api]) -> tuple[str, str]:
    """Two sells at 100 (a, then b), a better sell at 99 (a, later); a buy of 2.5 at 100 (c) must take 99
    first, then a's 100 (earlier) whole, then half of b's; b's rest is cancelled."""
    cancel_open_orders(pair, traders)
    first = place(traders["a"], pair, "sell", "100.00", "1")
    second = place(traders["b"], pair, "sell", "100.00", "1")
    better = place(traders["a"], pair, "sell", "99.00", "1")
    taker = place(traders["c"], pair, "buy", "100.00", "2.5")
    traders["b"].ok("POST", f"/api/orders/{second['id']}/cancel/")
    fills = [(t.price, t.quantity, t.maker_order_id)
             for t in Trade.objects.filter(taker_order_id=taker["id"]).order_by("sequence")]
    expected = [(Decimal(99), Decimal(1), better["id"]), (Decimal(100), Decimal(1), first["id"]),
                (Decimal(100), Decimal("0.5"), second["id"])]
    taker_after = traders["c"].ok("GET", f"/api/orders/{taker['id']}/")
    if fills != expected or taker_after["status"] != "filled" or Decimal(taker_after["average_fill_price"]) != \
            Decimal("99.6"):
        shown = [(f"{price:f}", f"{quantity:f}", maker) for price, quantity, maker in fills]
        return FAIL, f"trades (price, quantity, maker) {shown}, expected 99 x 1 ({better['id']}), " \
                     f"100 x 1 ({first['id']}), 100 x 0.5 ({second['id']}); taker {taker_after['status']} at " \
                     f"{taker_after['average_fill_price']}"
    return PASS, "better price first, then earlier time; partial fill and cancel as expected (3 trades)"


def random_stream(pair: TradingPair, traders: dict[str, Api], options: Options) -> tuple[str, str]:
    rng = random.Random(options.seed)
    placed = []
    for _ in range(options.stream_orders):
        side = rng.choice(("buy", "sell"))
        price = str(Decimal(100) + Decimal(rng.randint(-20, 20)) * Decimal("0.05"))
        quantity = str(Decimal(rng.randint(1, 50)) / 10)
        placed.append(place(traders[rng.choice("abc")], pair, side, price, quantity, wait_ms=0))
    ids = [order["id"] for order in placed]
    deadline = time.monotonic() + options.apply_timeout
    while Order.objects.filter(id__in=ids, status=Order.Status.PENDING).exists():
        if time.monotonic() > deadline:
            raise ValidationFailed("the worker did not take the stream's orders in time")
        time.sleep(0.2)
    problems = trade_problems(pair, ids)
    divergences = Divergence.objects.filter(pair=pair).count()
    if divergences:
        problems.append(f"{divergences} divergences between the books")
    trades = Trade.objects.filter(taker_order_id__in=ids).count()
    if problems:
        return FAIL, "; ".join(problems[:5])
    return PASS, f"{len(ids)} orders, {trades} trades: at the maker's price, within the taker's limit, fills " \
                 "add up, book not crossed, the books agree"


def trade_problems(pair: TradingPair, ids: list[int]) -> list[str]:
    problems = []
    for trade in Trade.objects.filter(taker_order_id__in=ids).select_related("maker_order", "taker_order"):
        maker, taker = trade.maker_order, trade.taker_order
        if trade.price != maker.price:
            problems.append(f"trade {trade.sequence} at {trade.price}, not its maker's price {maker.price}")
        worse = trade.price > taker.price if taker.side == "buy" else trade.price < taker.price
        if taker.price is not None and worse:
            problems.append(f"trade {trade.sequence} at {trade.price}, beyond the taker's limit {taker.price}")
    for order in Order.objects.filter(id__in=ids):
        traded = sum_of(Trade.objects.filter(maker_order=order)) + sum_of(Trade.objects.filter(taker_order=order))
        if traded != order.filled_quantity or order.filled_quantity > order.quantity:
            problems.append(f"order {order.id}: trades sum to {traded}, filled {order.filled_quantity}")
    resting = Order.objects.filter(pair=pair, status__in=Order.RESTING_STATUSES)
    best_bid = max((o.price for o in resting if o.side == "buy"), default=None)
    best_ask = min((o.price for o in resting if o.side == "sell"), default=None)
    if best_bid is not None and best_ask is not None and best_bid >= best_ask:
        problems.append(f"the book is crossed: bid {best_bid} >= ask {best_ask}")
    return problems


def sum_of(trades) -> Decimal:
    return trades.aggregate(total=Sum("quantity"))["total"] or Decimal(0)


def rolled_back(staff: Api, pair: TradingPair, options: Options) -> tuple[str, str]:
    started = time.monotonic()
    staff.ok("POST", "/admin/migration/rollback", {"pair": pair.symbol, "reason": "deployment validation"})
    wait_for(staff, pair.symbol, lambda s: s["mode"] == "legacy_only" and s["current_percentage"] == 0
             and s["applied"], options)
    return PASS, f"{pair.symbol} from 100% to the legacy book, applied by the worker in " \
                 f"{time.monotonic() - started:.2f} s"


# ---- helpers ---------------------------------------------------------------------------------------------
def place(trader: Api, pair: TradingPair, side: str, price: str, quantity: str, wait_ms: int = 5000) -> dict:
    return trader.ok("POST", "/api/orders/", {"pair": pair.symbol, "side": side, "price": price,
                                              "quantity": quantity}, wait=wait_ms)


def cancel_open_orders(pair: TradingPair, traders: dict[str, Api]) -> None:
    """An empty book for the crafted sequence: the validator's earlier orders on its pair, cancelled."""
    for name, trader in traders.items():
        open_orders = Order.objects.filter(pair=pair, owner__username=f"validator-{name}",
                                           status__in=Order.RESTING_STATUSES)
        for order_id in open_orders.values_list("id", flat=True):
            trader.call("POST", f"/api/orders/{order_id}/cancel/")
    deadline = time.monotonic() + 30
    while Order.objects.filter(pair=pair, status__in=Order.RESTING_STATUSES).exists():
        if time.monotonic() > deadline:
            raise ValidationFailed(f"{pair.symbol}'s book holds orders the validator cannot cancel")
        time.sleep(0.2)


def pair_status(staff: Api, symbol: str) -> dict:
    statuses = staff.ok("GET", "/admin/migration/status")
    return next(status for status in statuses if status["pair"] == symbol)


def wait_for(staff: Api, symbol: str, condition: Callable[[dict], bool], options: Options) -> dict:
    deadline = time.monotonic() + options.apply_timeout
    while True:
        status = pair_status(staff, symbol)
        if condition(status):
            return status
        if time.monotonic() > deadline:
            raise ValidationFailed(f"{symbol} stayed {status['mode']} at {status['current_percentage']}% "
                                   f"(asked {status['requested_percentage']}%) for {options.apply_timeout:g} s")
        time.sleep(0.2)
