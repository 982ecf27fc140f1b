"""Migration plans with their history, and the configuration operators edit in the admin.

A plan's state machine lives here (`MigrationPlan.step_up`, `hold`, `complete`, `roll_back`, `stop`); the
functions of `migrations_admin.actions` call it and are the only writers of plans and events.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from exchange.models import TradingPair
from migrations_admin.config import PRESET_NAMES, ConfigError, MigrationConfig, preset
from migrations_admin.errors import PlanStateError

PRESET_CHOICES = [(name, name) for name in PRESET_NAMES]


def _clean_overrides(base: MigrationConfig, overrides: dict, field: str) -> None:
    try:
        base.with_overrides(overrides)
    except ConfigError as error:
        raise ValidationError({field: str(error)}) from error


class MigrationSettings(models.Model):
    """The one row of global migration settings. The default config is the preset named here (or, blank,
    the one the environment's MIGRATION_PRESET names) with `overrides` on top."""

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    adaptive_order_books_enabled = models.BooleanField(
        default=True, help_text="Off: no migration can start or change percentage (rollbacks still work).")
    default_preset = models.CharField(max_length=16, choices=PRESET_CHOICES, blank=True,
                                      help_text="Blank: the preset of the MIGRATION_PRESET environment variable.")
    overrides = models.JSONField(default=dict, blank=True,
                                 help_text='Fields of the default config to change, e.g. {"step_percentage": 5}.')
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "migration settings"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="migration_settings_singleton")]

    def __str__(self) -> str:
        return "Migration settings"

    @classmethod
    def load(cls) -> "MigrationSettings":
        """The row, or the defaults when nobody has saved it yet."""
        return cls.objects.filter(id=cls.SINGLETON_ID).first() or cls()

    def base_preset(self) -> MigrationConfig:
        return preset(self.default_preset or settings.MIGRATION_PRESET)

    def default_config(self) -> MigrationConfig:
        """The config of every pair without its own."""
        return self.base_preset().with_overrides(self.overrides)

    def clean(self) -> None:
        _clean_overrides(self.base_preset(), self.overrides, "overrides")


class PairMigrationConfig(models.Model):
    """A pair's own migration config: a preset (blank: the default config) with `overrides` on top. It
    replaces the default config for this pair only."""

    pair = models.OneToOneField(TradingPair, on_delete=models.CASCADE, related_name="migration_config")
    preset = models.CharField(max_length=16, choices=PRESET_CHOICES, blank=True,
                              help_text="Blank: start from the default config.")
    overrides = models.JSONField(default=dict, blank=True,
                                 help_text='Fields to change, e.g. {"max_percentage": 50}.')
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pair__symbol"]

    def __str__(self) -> str:
        return f"{self.pair.symbol} migration config"

    def config_on(self, default: MigrationConfig) -> MigrationConfig:
        return (preset(self.preset) if self.preset else default).with_overrides(self.overrides)

    def clean(self) -> None:
        base = preset(self.preset) if self.preset else MigrationSettings.load().default_config()
        _clean_overrides(base, self.overrides, "overrides")


class PlanState(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    STOPPED = "stopped"


LIVE_STATES = (PlanState.PENDING, PlanState.RUNNING, PlanState.PAUSED)
OPERATOR_HOLD = "operator"          # the hold code of a plan an operator paused: auto-migration leaves it alone


class MigrationPlan(models.Model):
    """One pair's move to the adaptive book: where it is, where it goes, with which config, and when the next
    automatic step is due. At most one live (pending, running, paused) plan per pair."""

    State = PlanState

    id = models.BigAutoField(primary_key=True)
    pair = models.ForeignKey(TradingPair, on_delete=models.PROTECT, related_name="migration_plans")
    state = models.CharField(max_length=11, choices=State.choices, default=State.PENDING)
    current_percentage = models.PositiveSmallIntegerField(default=0)
    target_percentage = models.PositiveSmallIntegerField()
    finalize_at_target = models.BooleanField(
        default=False, help_text="Auto-migration finalizes (adaptive only) once the plan is healthy at 100%.")
    config = models.JSONField(help_text="The effective MigrationConfig when the plan started.")
    hold_code = models.CharField(max_length=32, blank=True, help_text="Why auto-migration holds, for machines.")
    hold_reason = models.CharField(max_length=255, blank=True)
    next_step_at = models.DateTimeField(null=True, blank=True)
    last_step_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True, help_text="Last rollback evaluation.")
    last_report_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=64, help_text="Who started it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["pair"], condition=Q(state__in=LIVE_STATES), name="one_live_plan_per_pair"),
            models.CheckConstraint(condition=Q(current_percentage__lte=100, target_percentage__lte=100),
                                   name="plan_percentages_at_most_100"),
            models.CheckConstraint(condition=Q(state__in=PlanState.values), name="plan_state_known"),
        ]

    def __str__(self) -> str:
        return f"{self.pair.symbol} {self.state} {self.current_percentage}% -> {self.target_percentage}%"

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def migration_config(self) -> MigrationConfig:
        return MigrationConfig.from_dict(self.config)

    def begin(self, now: datetime) -> None:
        self._require_live("start")
        self.state = self.State.RUNNING
        self.last_step_at = self.last_report_at = now
        self.next_step_at = now + self._seconds(self.migration_config.step_interval_s)

    def step_up(self, percentage: int, now: datetime) -> None:
        """An automatic step to a higher percentage; the next one is due a step interval later."""
        self._require_live("step up")
        if percentage <= self.current_percentage:
            raise PlanStateError(f"a step up must raise the percentage above {self.current_percentage}%")
        self._move(percentage, now, self.migration_config.step_interval_s)

    def set_percentage(self, percentage: int, now: datetime) -> None:
        """An operator's choice: the percentage becomes the current and the target one, so auto-migration
        does not undo it; automatic steps resume after the cooldown."""
        self._require_live("change the percentage of")
        self.target_percentage = percentage
        self._move(percentage, now, self.migration_config.safety_cooldown_s)

    def hold(self, code: str, reason: str, now: datetime) -> bool:
        """Auto-migration holds (paused) and looks again after the cooldown. True when the reason is new."""
        self._require_live("hold")
        is_new = code != self.hold_code
        self.state = self.State.PAUSED
        self.hold_code, self.hold_reason = code, reason[:255]
        self.next_step_at = now + self._seconds(self.migration_config.safety_cooldown_s)
        return is_new

    def pause(self, now: datetime) -> None:
        """An operator holds the plan where it is until resumed; the rollback triggers still watch it."""
        self._require_live("pause")
        self.state = self.State.PAUSED
        self.hold_code, self.hold_reason = OPERATOR_HOLD, "paused by an operator"
        self.next_step_at = None

    def resume(self, now: datetime) -> None:
        """Auto-migration takes the plan up again, its next step a step interval away."""
        if self.hold_code != OPERATOR_HOLD:
            raise PlanStateError(f"the plan of {self.pair.symbol} was not paused by an operator", code="not_paused")
        self.state = self.State.RUNNING
        self.hold_code = self.hold_reason = ""
        self.next_step_at = now + self._seconds(self.migration_config.step_interval_s)

    def complete(self, now: datetime) -> None:
        """Finalized: the pair runs on the adaptive book alone."""
        self._require_live("finalize")
        if self.current_percentage != 100:
            raise PlanStateError(f"finalize needs the plan at 100%, not {self.current_percentage}%",
                                 code="not_at_full_percentage")
        self._end(self.State.COMPLETED, 100, now)

    def roll_back(self, now: datetime) -> None:
        if self.state not in (*LIVE_STATES, self.State.COMPLETED):
            raise PlanStateError(f"a {self.state} plan cannot be rolled back")
        self._end(self.State.ROLLED_BACK, 0, now)

    def stop(self, now: datetime) -> None:
        if self.state not in (*LIVE_STATES, self.State.COMPLETED):
            raise PlanStateError(f"a {self.state} plan cannot be stopped")
        self._end(self.State.STOPPED, 0, now)

    def _move(self, percentage: int, now: datetime, wait_s: float) -> None:
        self.state = self.State.RUNNING
        self.current_percentage = percentage
        self.hold_code = self.hold_reason = ""
        self.last_step_at = now
        self.next_step_at = now + self._seconds(wait_s)

    def _end(self, state: str, percentage: int, now: datetime) -> None:
        self.state = state
        self.current_percentage = percentage
        self.last_step_at = now
        self.next_step_at = None

    def _require_live(self, action: str) -> None:
        if not self.is_live:
            raise PlanStateError(f"cannot {action} a {self.state} plan")

    @staticmethod
    def _seconds(seconds: float) -> timedelta:
        return timedelta(seconds=seconds)


class MigrationEvent(models.Model):
    """One step or decision of a plan: who or what, when, why, and the figures behind it."""

    class Kind(models.TextChoices):
        START = "start"
        STEP = "step"
        SET_PERCENTAGE = "set_percentage"
        HOLD = "hold"
        FINALIZE = "finalize"
        ROLLBACK = "rollback"
        EMERGENCY_STOP = "emergency_stop"
        RESET_BREAKER = "reset_breaker"
        REPORT = "report"
        PAUSE = "pause"
        RESUME = "resume"

    id = models.BigAutoField(primary_key=True)
    plan = models.ForeignKey(MigrationPlan, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.CharField(max_length=64, help_text="operator:<name>, cli:<user>, celery:auto-migration, "
                                                      "celery:rollback-evaluator")
    from_percentage = models.PositiveSmallIntegerField(null=True, blank=True)
    to_percentage = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    figures = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind} by {self.actor}"
