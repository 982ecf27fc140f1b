"""Persistent state of the exchange; each model owns its invariants as database constraints."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.db.models.functions import Concat, Upper

from matching.units import EXACT

# Explicit precision for every amount: 20 integer digits and 18 decimals (the smallest unit of ETH).
AMOUNT_DIGITS = 38
AMOUNT_DECIMALS = 18
# A notional sums price × quantity over fills whose quantities add up to at most the order's quantity, every
# price below 10^20: it stays below 10^40, 40 integer digits. Narrower, the largest orders the API accepts
# overflowed the worker's write, and the batch failed again on every retry.
NOTIONAL_DIGITS = 2 * (AMOUNT_DIGITS - AMOUNT_DECIMALS) + AMOUNT_DECIMALS


def amount_field(**options) -> models.DecimalField:
    """A decimal column wide enough for any price, quantity or notional of any asset."""
    return models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS, **options)


class TradingPair(models.Model):
    """A market where `base_asset` is bought and sold for `quote_asset`, with its price and size grid.

    Prices are multiples of `tick_size` and quantities multiples of `lot_size`: the engine counts in ticks
    and lots. `shard` names the matching worker that owns the pair's book.
    """

    class Status(models.TextChoices):
        TRADING = "trading", "Trading"
        HALTED = "halted", "Halted"

    symbol = models.CharField(max_length=20, unique=True, help_text="Base then quote asset, e.g. BTCUSDT.")
    base_asset = models.CharField(max_length=10)
    quote_asset = models.CharField(max_length=10)
    tick_size = amount_field(help_text="Smallest price step, in the quote asset.")
    lot_size = amount_field(help_text="Smallest quantity step, in the base asset.")
    min_notional = amount_field(default=Decimal("0"), help_text="Smallest price × quantity of an order.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRADING)
    shard = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(tick_size__gt=0), name="pair_tick_size_positive"),
            models.CheckConstraint(condition=Q(lot_size__gt=0), name="pair_lot_size_positive"),
            models.CheckConstraint(condition=Q(min_notional__gte=0), name="pair_min_notional_not_negative"),
            models.CheckConstraint(
                condition=Q(
                    symbol=Upper("symbol"), base_asset=Upper("base_asset"), quote_asset=Upper("quote_asset")
                ),
                name="pair_names_uppercase",
            ),
            models.CheckConstraint(
                condition=Q(symbol=Concat("base_asset", "quote_asset")), name="pair_symbol_is_base_then_quote"
            ),
        ]

    def __str__(self) -> str:
        return self.symbol

    def price_text(self, price: Decimal | None) -> str:
        """`50,000.00 USDT`: a price in the pair's own precision (its tick's decimals) and quote asset."""
        return "market" if price is None else f"{price:,.{decimals_of(self.tick_size)}f} {self.quote_asset}"

    def quantity_text(self, quantity: Decimal) -> str:
        """`0.010 BTC`: a quantity in the pair's own precision (its lot's decimals) and base asset."""
        return f"{quantity:,.{decimals_of(self.lot_size)}f} {self.base_asset}"

    def clean(self) -> None:
        """Accept lowercase input from forms: asset names and symbols are stored uppercase."""
        self.symbol = self.symbol.upper()
        self.base_asset = self.base_asset.upper()
        self.quote_asset = self.quote_asset.upper()


def decimals_of(step: Decimal) -> int:
    """2 for a step of 0.01, 0 for 1 or 10: the decimals an amount on that grid needs."""
    return max(0, -int(step.normalize().as_tuple().exponent))     # a step is finite: its exponent is a number


def inbox_sequence_field() -> models.BigIntegerField:
    """The engine's arrival order: one PostgreSQL sequence shared by new orders and cancel/reduce requests,
    so the worker can interleave both inboxes exactly as they were committed (a single writer) or close to
    it (many writers), and a replay of the same inbox gives the same result."""
    return models.BigIntegerField(
        db_default=models.Func(models.Value(INBOX_SEQUENCE), function="nextval"), editable=False
    )


INBOX_SEQUENCE = "exchange_inbox_seq"


class OrderSide(models.TextChoices):
    BUY = "buy"
    SELL = "sell"


class OrderType(models.TextChoices):
    LIMIT = "limit"
    MARKET = "market"


class OrderTimeInForce(models.TextChoices):
    GTC = "gtc", "Good till cancelled"
    IOC = "ioc", "Immediate or cancel"
    FOK = "fok", "Fill or kill"
    POST_ONLY = "post_only", "Post only"


class OrderSelfTrade(models.TextChoices):
    EXPIRE_TAKER = "expire_taker"
    EXPIRE_MAKER = "expire_maker"
    EXPIRE_BOTH = "expire_both"
    NONE = "none"


class OrderStatus(models.TextChoices):
    PENDING = "pending"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Order(models.Model):
    """A user's order. Committed as `pending` by the API (the order row is the worker's inbox); from then
    on only the matching worker changes it."""

    Side = OrderSide
    Type = OrderType
    TimeInForce = OrderTimeInForce
    SelfTrade = OrderSelfTrade
    Status = OrderStatus

    RESTING_STATUSES = (Status.OPEN, Status.PARTIALLY_FILLED)
    FINISHED_STATUSES = (Status.FILLED, Status.CANCELLED, Status.REJECTED)

    id = models.BigAutoField(primary_key=True)
    # No single-column indexes on the two keys: the composite indexes below serve every query, and each
    # index costs the worker's batch UPDATE a write per order.
    owner = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="orders", db_index=False)
    pair = models.ForeignKey(TradingPair, on_delete=models.PROTECT, related_name="orders", db_index=False)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=6, choices=Type.choices, default=Type.LIMIT)
    time_in_force = models.CharField(max_length=9, choices=TimeInForce.choices, default=TimeInForce.GTC)
    self_trade = models.CharField(max_length=12, choices=SelfTrade.choices, default=SelfTrade.EXPIRE_TAKER)
    price = amount_field(null=True, blank=True, help_text="Limit price; empty for market orders.")
    quantity = amount_field()
    filled_quantity = amount_field(default=Decimal("0"))
    filled_notional = models.DecimalField(max_digits=NOTIONAL_DIGITS, decimal_places=AMOUNT_DECIMALS,
                                          default=Decimal("0"), help_text="Sum of price × quantity of its fills.")
    average_fill_price = amount_field(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=32, blank=True, help_text="Why it was rejected or cancelled.")
    client_order_id = models.CharField(max_length=36, null=True, blank=True,
                                       help_text="The client's own id of the order, unique per owner.")
    inbox_sequence = inbox_sequence_field()
    priority_sequence = models.BigIntegerField(
        null=True, blank=True, help_text="The engine sequence of its place command: its time priority."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True,
                                        help_text="When the matching worker wrote the order's first result.")

    class Meta:
        ordering = ["-id"]
        indexes = [
            # the worker's inbox scan
            models.Index(fields=["inbox_sequence"], name="order_pending_inbox", condition=Q(status="pending")),
            # book rebuild on start and depth, in priority order
            models.Index(fields=["pair", "side", "price", "priority_sequence"], name="order_resting_book",
                         condition=Q(status__in=["open", "partially_filled"])),
            # "my orders", newest first
            models.Index(fields=["owner", "-id"], name="order_by_owner"),
        ]
        constraints = [
            # A retried placement finds the order it placed the first time (`exchange.trading.orders`).
            models.UniqueConstraint(fields=["owner", "client_order_id"], condition=Q(client_order_id__isnull=False),
                                    name="order_client_id_per_owner"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(filled_quantity__gte=0, filled_quantity__lte=models.F("quantity")),
                                   name="order_filled_within_quantity"),
            models.CheckConstraint(condition=Q(order_type="market", price__isnull=True) |
                                   Q(order_type="limit", price__gt=0), name="order_price_matches_type"),
            # The worker trusts these columns (it skips the engine's command validation): the table enforces
            # the engine's vocabulary.
            models.CheckConstraint(condition=Q(side__in=OrderSide.values), name="order_side_known"),
            models.CheckConstraint(condition=Q(time_in_force__in=OrderTimeInForce.values),
                                   name="order_time_in_force_known"),
            models.CheckConstraint(condition=Q(self_trade__in=OrderSelfTrade.values), name="order_self_trade_known"),
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_known"),
        ]

    def __str__(self) -> str:
        pair = self.pair
        return f"{pair.symbol} {self.side} {pair.quantity_text(self.quantity)} @ {pair.price_text(self.price)} " \
               f"(order {self.id})"

    @property
    def remaining_quantity(self) -> Decimal:
        return EXACT.subtract(self.quantity, self.filled_quantity)   # 38 digits: beyond the default context


class OrderRequest(models.Model):
    """A cancel or reduce of a resting order, waiting in the worker's inbox beside new orders."""

    class Kind(models.TextChoices):
        CANCEL = "cancel"
        REDUCE = "reduce"

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="requests")
    pair = models.ForeignKey(TradingPair, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    quantity = amount_field(null=True, blank=True, help_text="The new remaining quantity of a reduce.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=32, blank=True)
    inbox_sequence = inbox_sequence_field()
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["inbox_sequence"], name="request_pending_inbox", condition=Q(status="pending"))]
        constraints = [
            models.CheckConstraint(condition=Q(kind="cancel") | Q(quantity__gte=0), name="request_reduce_quantity"),
        ]


class Trade(models.Model):
    """One execution between a resting (maker) and an incoming (taker) order, at the maker's price.
    `sequence` numbers a pair's trades from 1; it is unique, so a replayed batch can never double a trade."""

    id = models.BigAutoField(primary_key=True)
    # No database foreign keys (db_constraint=False): only the matching worker writes trades, in the transaction
    # that also writes both orders' rows, which it holds locked. The deferred checks locked each order row again
    # at COMMIT and measured 16% of the worker's time. Django still applies PROTECT on the orders' side.
    pair = models.ForeignKey(TradingPair, on_delete=models.PROTECT, related_name="trades", db_index=False,
                             db_constraint=False)
    sequence = models.BigIntegerField()
    maker_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="maker_trades", db_constraint=False)
    taker_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="taker_trades", db_constraint=False)
    price = amount_field()
    quantity = amount_field()
    taker_side = models.CharField(max_length=4, choices=Order.Side.choices)
    engine_sequence = models.BigIntegerField(help_text="The engine sequence of the taker's command.")
    executed_at = models.DateTimeField()

    class Meta:
        ordering = ["-sequence"]
        constraints = [
            models.UniqueConstraint(fields=["pair", "sequence"], name="trade_sequence_unique_per_pair"),
            models.CheckConstraint(condition=Q(price__gt=0, quantity__gt=0), name="trade_amounts_positive"),
        ]
        indexes = [models.Index(fields=["pair", "-executed_at"], name="trade_recent_by_pair")]

    def __str__(self) -> str:
        pair = self.pair
        return f"{pair.symbol} trade {self.sequence}: {pair.quantity_text(self.quantity)} @ " \
               f"{pair.price_text(self.price)}"


class AuditLog(models.Model):
    """Who or what did what to which target, and the figures behind it. Written in the same transaction as
    the change it records."""

    id = models.BigAutoField(primary_key=True)
    actor = models.CharField(max_length=64, help_text="user:<name>, worker:shard-<n>, celery, operator:<name>")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["target", "-id"], name="audit_by_target")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"


class EngineState(models.Model):
    """A pair's engine as the worker last committed it: its mode and the counters a restart resumes from."""

    class Mode(models.TextChoices):
        LEGACY_ONLY = "legacy_only"
        MIGRATING = "migrating"
        ADAPTIVE_ONLY = "adaptive_only"

    pair = models.OneToOneField(TradingPair, on_delete=models.CASCADE, primary_key=True, related_name="engine")
    mode = models.CharField(max_length=14, choices=Mode.choices, default=Mode.LEGACY_ONLY)
    percentage = models.PositiveSmallIntegerField(default=0, help_text="Share of orders the adaptive book executes.")
    settings = models.JSONField(default=dict, blank=True, help_text="The breaker and latency settings in force.")
    breaker_state = models.CharField(max_length=9, default="closed")
    breaker_trips = models.IntegerField(default=0, help_text="Times the breaker opened since the migration began.")
    command_sequence = models.BigIntegerField(default=0, help_text="Engine sequence of the next command.")
    trade_sequence = models.BigIntegerField(default=0, help_text="Sequence of the last trade.")
    last_inbox_sequence = models.BigIntegerField(default=0, help_text="Last inbox entry the worker committed.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(percentage__lte=100), name="engine_percentage_at_most_100")]

    def __str__(self) -> str:
        return f"{self.pair_id} {self.mode} {self.percentage}%"


class WorkerHeartbeat(models.Model):
    """The last sign of life of a shard's matching worker, for /health and operators."""

    shard = models.PositiveIntegerField(primary_key=True)
    pid = models.PositiveIntegerField()
    hostname = models.CharField(max_length=255)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    batches = models.BigIntegerField(default=0)
    commands = models.BigIntegerField(default=0)
    interval_seconds = models.FloatField(default=2.0, help_text="How often the worker writes its heartbeat.")
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="When the worker stopped cleanly.")


class EngineCommand(models.Model):
    """A control command for a pair's engine (migration steps, breaker reset, emergency stop). It reaches the
    worker through the database like orders, jumps the queue of pending orders, and its effect is persisted
    in the pair's EngineState in the same transaction, so a restarted worker resumes in the same mode."""

    class Kind(models.TextChoices):
        START = "start"                       # legacy_only -> migrating(percentage), adaptive built from legacy
        SET_PERCENTAGE = "set_percentage"     # migrating(p) -> migrating(percentage)
        FINALIZE = "finalize"                 # migrating(100) -> adaptive_only, legacy dropped
        ROLLBACK = "rollback"                 # migrating/adaptive_only -> legacy_only
        RESET_BREAKER = "reset_breaker"       # breaker -> closed
        EMERGENCY_STOP = "emergency_stop"     # like rollback, at once, whatever the mode
        REPUBLISH = "republish"               # the engine unchanged; its market data published whole again

    class Status(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"
        REJECTED = "rejected"

    id = models.BigAutoField(primary_key=True)
    pair = models.ForeignKey(TradingPair, on_delete=models.CASCADE, related_name="engine_commands")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    percentage = models.PositiveSmallIntegerField(null=True, blank=True)
    settings = models.JSONField(default=dict, blank=True,
                                help_text="Breaker and latency settings for the pair (start and set_percentage).")
    actor = models.CharField(max_length=64)
    reason = models.CharField(max_length=255, blank=True, help_text="Why it was sent, or why it was rejected.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["id"], name="engine_command_pending", condition=Q(status="pending"))]
        constraints = [
            models.CheckConstraint(condition=Q(percentage__isnull=True) | Q(percentage__lte=100),
                                   name="engine_command_percentage_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.pair_id} {self.percentage if self.percentage is not None else ''}".strip()


class HealthSample(models.Model):
    """One minute of one book of one pair, as the worker measured it; rewritten every few seconds while
    the minute lasts. The rollback evaluator and the charts read the same rows."""

    class Book(models.TextChoices):
        LEGACY = "legacy"
        ADAPTIVE = "adaptive"

    pair = models.ForeignKey(TradingPair, on_delete=models.CASCADE, related_name="health_samples", db_index=False)
    minute = models.DateTimeField()
    book = models.CharField(max_length=8, choices=Book.choices)
    commands = models.BigIntegerField(default=0, help_text="Commands this book executed or verified.")
    errors = models.BigIntegerField(default=0, help_text="Exceptions and divergences charged to this book.")
    divergences = models.BigIntegerField(default=0)
    latency_p50_us = models.FloatField(null=True, blank=True)
    latency_p95_us = models.FloatField(null=True, blank=True)
    latency_p99_us = models.FloatField(null=True, blank=True)
    breaker_state = models.CharField(max_length=9, default="closed")
    breaker_trips = models.IntegerField(default=0, help_text="Times the breaker opened during the minute.")
    memory_bytes = models.BigIntegerField(default=0, help_text="Worker resident memory.")
    memory_limit_bytes = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-minute"]
        constraints = [models.UniqueConstraint(fields=["pair", "minute", "book"], name="health_sample_per_minute")]

    @property
    def error_rate(self) -> float:
        return self.errors / self.commands if self.commands else 0.0


class Divergence(models.Model):
    """A command on which the adaptive book disagreed with the legacy book (or raised): both outputs, so the
    bug can be reproduced. The legacy book's result was the one persisted."""

    class Kind(models.TextChoices):
        DIVERGENCE = "divergence"
        EXCEPTION = "exception"

    id = models.BigAutoField(primary_key=True)
    pair = models.ForeignKey(TradingPair, on_delete=models.CASCADE, related_name="divergences")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    engine_sequence = models.BigIntegerField()
    command = models.JSONField()
    legacy_events = models.JSONField()
    adaptive_events = models.JSONField(help_text="The adaptive book's events, or the exception it raised.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
