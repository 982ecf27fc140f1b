"""Migration configuration: the five presets, per-pair overrides and validation. Pure Python: no Django.

A `MigrationConfig` holds every knob of one pair's migration from the legacy to the adaptive book: how it
steps (auto-migration), how the worker's breaker behaves (sent to the worker with `to_engine_settings()`),
and when the rollback evaluator gives up. Durations are seconds and rates are fractions (0.01 is 1%).
"""

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any


class ConfigError(ValueError):
    """A configuration that cannot be used, with a message naming the field and the problem."""


@dataclass(frozen=True)
class MigrationConfig:
    """Everything that governs one pair's migration. Validated on construction."""

    # How the percentage moves (read by actions.start_migration / check_percentage and decisions.step_decision).
    initial_percentage: int
    max_percentage: int
    step_percentage: int
    step_interval_s: float
    # The worker's per-pair circuit breaker and latency limit (sent to the worker by to_engine_settings).
    breaker_failure_threshold: int
    breaker_recovery_timeout_s: float
    breaker_half_open_calls: int
    # How often the control plane re-evaluates a plan's health, and writes a progress report.
    metrics_interval_s: float
    report_interval_s: float
    auto_migration: bool
    # Safety limits of automatic steps.
    safety_max_step: int
    safety_cooldown_s: float
    safety_error_threshold: float
    breaker_failure_window_s: float = 60.0
    adaptive_latency_limit_ms: float = 50.0
    hash_key: str = "adaptive-rollout"
    # Automatic rollback triggers (the deployment guide's defaults).
    rollback_error_rate: float = 0.01
    rollback_error_rate_window_s: float = 300.0
    rollback_p95_ms: float = 50.0
    rollback_p95_window_s: float = 180.0
    rollback_breaker_trips: int = 3
    rollback_breaker_window_s: float = 600.0
    rollback_memory_fraction: float = 0.9
    rollback_memory_window_s: float = 120.0

    def __post_init__(self) -> None:
        for name in FIELD_TYPES:
            # Frozen, so set through object: presets write `step_interval_s=300`, the worker wants 300.0.
            object.__setattr__(self, name, _typed(name, getattr(self, name)))
        problems = _problems(self)
        if problems:
            raise ConfigError("; ".join(problems))

    def with_overrides(self, overrides: Mapping[str, Any]) -> "MigrationConfig":
        """A copy with some fields changed, e.g. `{"step_percentage": 5}`; unknown names or wrong types are a
        ConfigError."""
        return replace(self, **_known(overrides))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MigrationConfig":
        missing = sorted(name for name in FIELD_TYPES if name not in data and name not in FIELD_DEFAULTS)
        if missing:
            raise ConfigError(f"missing fields: {', '.join(missing)}")
        return cls(**_known(data))

    def to_engine_settings(self) -> dict[str, Any]:
        """The settings JSON the matching worker applies to this pair with `start` and `set_percentage`."""
        return {
            "breaker_failure_threshold": self.breaker_failure_threshold,
            "breaker_failure_window_s": self.breaker_failure_window_s,
            "breaker_recovery_timeout_s": self.breaker_recovery_timeout_s,
            "breaker_half_open_calls": self.breaker_half_open_calls,
            "adaptive_latency_limit_ms": self.adaptive_latency_limit_ms,
            "hash_key": self.hash_key,
        }

    @property
    def auto_step(self) -> int:
        """The size of one automatic step: the step, never more than the safety max step."""
        return min(self.step_percentage, self.safety_max_step)


FIELD_TYPES: dict[str, Any] = {f.name: f.type for f in fields(MigrationConfig)}
FIELD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(MigrationConfig) if f.default is not MISSING}
PERCENTAGE_FIELDS = ("initial_percentage", "max_percentage", "step_percentage", "safety_max_step")
POSITIVE_FIELDS = ("step_interval_s", "breaker_failure_threshold", "breaker_recovery_timeout_s",
                   "breaker_half_open_calls", "metrics_interval_s", "report_interval_s", "safety_cooldown_s",
                   "breaker_failure_window_s", "adaptive_latency_limit_ms", "rollback_error_rate_window_s",
                   "rollback_p95_ms", "rollback_p95_window_s", "rollback_breaker_window_s",
                   "rollback_memory_window_s")
FRACTION_FIELDS = ("safety_error_threshold", "rollback_error_rate", "rollback_memory_fraction")


def _known(overrides: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"overrides must be an object of field names to values, not {type(overrides).__name__}")
    unknown = sorted(set(overrides) - set(FIELD_TYPES))
    if unknown:
        raise ConfigError(f"unknown configuration fields: {', '.join(unknown)}; known: {', '.join(FIELD_TYPES)}")
    return dict(overrides)


def _typed(name: str, value: Any) -> Any:
    kind = FIELD_TYPES[name]
    # bool is an int in Python, but `"max_percentage": true` is a mistake, not 1%.
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str) and value:
        return value
    expected = {bool: "true or false", int: "a whole number", float: "a number", str: "a non-empty string"}[kind]
    raise ConfigError(f"{name} must be {expected}, not {value!r}")


def _problems(config: MigrationConfig) -> list[str]:
    problems = []
    for name in PERCENTAGE_FIELDS:
        if not 0 <= getattr(config, name) <= 100:
            problems.append(f"{name} must be between 0 and 100, not {getattr(config, name)}")
    for name in POSITIVE_FIELDS:
        if getattr(config, name) <= 0:
            problems.append(f"{name} must be greater than 0, not {getattr(config, name)}")
    for name in FRACTION_FIELDS:
        if not 0 < getattr(config, name) <= 1:
            problems.append(f"{name} is a fraction (0.01 is 1%) and must be in (0, 1], not {getattr(config, name)}")
    if config.max_percentage < 1:
        problems.append("max_percentage must be at least 1")
    if config.step_percentage < 1 or config.safety_max_step < 1:
        problems.append("step_percentage and safety_max_step must be at least 1")
    if config.step_percentage > config.max_percentage:
        problems.append(f"step_percentage {config.step_percentage} is larger than max_percentage "
                        f"{config.max_percentage}")
    if config.initial_percentage > config.max_percentage:
        problems.append(f"initial_percentage {config.initial_percentage} is larger than max_percentage "
                        f"{config.max_percentage}")
    if config.rollback_breaker_trips < 0:
        problems.append(f"rollback_breaker_trips must be 0 or more, not {config.rollback_breaker_trips}")
    return problems


class ConfigurationPresets:
    """The five presets of the original system (ARCHITECTURE.md, "Configuration presets")."""

    def conservative(self) -> MigrationConfig:
        """Initial deployments: small steps, capped at 50%, no automatic steps."""
        return MigrationConfig(
            initial_percentage=5, max_percentage=50, step_percentage=5, step_interval_s=600,
            breaker_failure_threshold=3, breaker_recovery_timeout_s=300, breaker_half_open_calls=5,
            metrics_interval_s=15, report_interval_s=600, auto_migration=False,
            safety_max_step=5, safety_cooldown_s=300, safety_error_threshold=0.01)

    def production(self) -> MigrationConfig:
        """The standard: 10% steps every 5 minutes up to 100%."""
        return MigrationConfig(
            initial_percentage=10, max_percentage=100, step_percentage=10, step_interval_s=300,
            breaker_failure_threshold=3, breaker_recovery_timeout_s=180, breaker_half_open_calls=5,
            metrics_interval_s=10, report_interval_s=300, auto_migration=True,
            safety_max_step=10, safety_cooldown_s=180, safety_error_threshold=0.02)

    def aggressive(self) -> MigrationConfig:
        """High-confidence deployments: 20% steps every 3 minutes."""
        return MigrationConfig(
            initial_percentage=20, max_percentage=100, step_percentage=20, step_interval_s=180,
            breaker_failure_threshold=5, breaker_recovery_timeout_s=120, breaker_half_open_calls=10,
            metrics_interval_s=5, report_interval_s=120, auto_migration=True,
            safety_max_step=20, safety_cooldown_s=120, safety_error_threshold=0.02)

    def testing(self) -> MigrationConfig:
        """Test environments: the whole way in two minutes."""
        return MigrationConfig(
            initial_percentage=50, max_percentage=100, step_percentage=25, step_interval_s=30,
            breaker_failure_threshold=2, breaker_recovery_timeout_s=30, breaker_half_open_calls=3,
            metrics_interval_s=2, report_interval_s=30, auto_migration=True,
            safety_max_step=25, safety_cooldown_s=30, safety_error_threshold=0.05)

    def high_volume(self) -> MigrationConfig:
        """Busy pairs: small slow steps, capped at 75%, a strict error threshold."""
        return MigrationConfig(
            initial_percentage=5, max_percentage=75, step_percentage=5, step_interval_s=900,
            breaker_failure_threshold=2, breaker_recovery_timeout_s=600, breaker_half_open_calls=3,
            metrics_interval_s=5, report_interval_s=180, auto_migration=True,
            safety_max_step=5, safety_cooldown_s=300, safety_error_threshold=0.005)


PRESET_NAMES = ("conservative", "production", "aggressive", "testing", "high_volume")


def preset(name: str) -> MigrationConfig:
    """The preset called `name` (one of PRESET_NAMES)."""
    if name not in PRESET_NAMES:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return getattr(ConfigurationPresets(), name)()


@dataclass(frozen=True)
class TradingConfiguration:
    """Whether adaptive books may be used at all, the default migration config, and per-pair overrides."""

    adaptive_order_books_enabled: bool
    default: MigrationConfig
    pairs: Mapping[str, MigrationConfig] = field(default_factory=lambda: MappingProxyType({}))

    def for_pair(self, symbol: str) -> MigrationConfig:
        """The pair's own configuration if it has one, otherwise the default."""
        return self.pairs.get(symbol.upper(), self.default)


class ConfigBuilder:
    """Composes a TradingConfiguration: `ConfigBuilder().enable_adaptive_order_books(True)
    .with_migration_config(cfg).with_pair_specific_config("BTCUSDT", btc_cfg).build()`."""

    def __init__(self) -> None:
        self._enabled = False
        self._default: MigrationConfig | None = None
        self._pairs: dict[str, MigrationConfig] = {}

    def enable_adaptive_order_books(self, enabled: bool) -> "ConfigBuilder":
        self._enabled = enabled
        return self

    def with_migration_config(self, config: MigrationConfig) -> "ConfigBuilder":
        self._default = _checked_config(config, "the default migration config")
        return self

    def with_pair_specific_config(self, symbol: str, config: MigrationConfig) -> "ConfigBuilder":
        if not symbol or not isinstance(symbol, str):
            raise ConfigError(f"a pair-specific config needs a pair symbol, not {symbol!r}")
        self._pairs[symbol.upper()] = _checked_config(config, f"the config of {symbol}")
        return self

    def build(self) -> TradingConfiguration:
        # The configs are frozen and the mapping read-only, so nothing can change one pair's config
        # through another's, nor through the builder after build().
        return TradingConfiguration(self._enabled, self._default or preset("production"),
                                    MappingProxyType(dict(self._pairs)))


def _checked_config(config: MigrationConfig, what: str) -> MigrationConfig:
    if not isinstance(config, MigrationConfig):
        raise ConfigError(f"{what} must be a MigrationConfig, not {type(config).__name__}")
    return config
