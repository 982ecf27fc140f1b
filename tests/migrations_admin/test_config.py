"""The migration configuration: the five presets exactly as ARCHITECTURE.md's table, validation, overrides,
the builder's per-pair isolation and the worker's settings JSON. Pure: no database."""

import dataclasses

import pytest

from migrations_admin.config import (
    PRESET_NAMES,
    ConfigBuilder,
    ConfigError,
    ConfigurationPresets,
    MigrationConfig,
    preset,
)

# ARCHITECTURE.md: initial / max / step %, step every, breaker failures / recovery / half-open calls,
# metrics / report every, auto, safety: max step, cooldown, error threshold.
PRESET_TABLE = {
    "conservative": (5, 50, 5, 600, 3, 300, 5, 15, 600, False, 5, 300, 0.01),
    "production": (10, 100, 10, 300, 3, 180, 5, 10, 300, True, 10, 180, 0.02),
    "aggressive": (20, 100, 20, 180, 5, 120, 10, 5, 120, True, 20, 120, 0.02),
    "testing": (50, 100, 25, 30, 2, 30, 3, 2, 30, True, 25, 30, 0.05),
    "high_volume": (5, 75, 5, 900, 2, 600, 3, 5, 180, True, 5, 300, 0.005),
}
TABLE_FIELDS = ("initial_percentage", "max_percentage", "step_percentage", "step_interval_s",
                "breaker_failure_threshold", "breaker_recovery_timeout_s", "breaker_half_open_calls",
                "metrics_interval_s", "report_interval_s", "auto_migration", "safety_max_step", "safety_cooldown_s",
                "safety_error_threshold")


@pytest.mark.parametrize("name", PRESET_TABLE)
def test_preset_matches_the_architecture_table(name):
    config = getattr(ConfigurationPresets(), name)()

    assert tuple(getattr(config, field) for field in TABLE_FIELDS) == PRESET_TABLE[name]
    assert preset(name) == config


def test_there_are_exactly_five_presets():
    assert set(PRESET_NAMES) == set(PRESET_TABLE)


def test_every_preset_has_the_guides_rollback_triggers():
    for name in PRESET_NAMES:
        config = preset(name)
        assert (config.rollback_error_rate, config.rollback_error_rate_window_s) == (0.01, 300)
        assert (config.rollback_p95_ms, config.rollback_p95_window_s) == (50, 180)
        assert (config.rollback_breaker_trips, config.rollback_breaker_window_s) == (3, 600)
        assert (config.rollback_memory_fraction, config.rollback_memory_window_s) == (0.9, 120)


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ConfigError, match="choose one of conservative, production"):
        preset("yolo")


def test_engine_settings_are_the_workers_contract():
    settings = preset("aggressive").with_overrides({"breaker_failure_window_s": 30, "hash_key": "k"}) \
        .to_engine_settings()

    assert settings == {"breaker_failure_threshold": 5, "breaker_failure_window_s": 30.0,
                        "breaker_recovery_timeout_s": 120.0, "breaker_half_open_calls": 10,
                        "adaptive_latency_limit_ms": 50.0, "hash_key": "k"}


def test_builder_keeps_pair_configs_apart():
    default = preset("production")
    btc = preset("conservative")
    eth = preset("testing").with_overrides({"max_percentage": 60})

    configuration = (ConfigBuilder().enable_adaptive_order_books(True).with_migration_config(default)
                     .with_pair_specific_config("BTCUSDT", btc).with_pair_specific_config("ethusdt", eth).build())

    assert configuration.adaptive_order_books_enabled
    assert configuration.for_pair("BTCUSDT") == btc
    assert configuration.for_pair("ETHUSDT") == eth
    assert configuration.for_pair("ADAUSDT") == default
    with pytest.raises(TypeError):
        configuration.pairs["ADAUSDT"] = btc
    with pytest.raises(dataclasses.FrozenInstanceError):
        configuration.for_pair("BTCUSDT").max_percentage = 100  # type: ignore[misc]


def test_builder_changes_after_build_do_not_leak():
    builder = ConfigBuilder().with_migration_config(preset("production"))
    configuration = builder.build()

    builder.with_pair_specific_config("BTCUSDT", preset("testing"))

    assert configuration.for_pair("BTCUSDT") == preset("production")
    assert not configuration.adaptive_order_books_enabled


def test_builder_rejects_a_config_that_is_not_one():
    with pytest.raises(ConfigError, match="must be a MigrationConfig"):
        ConfigBuilder().with_pair_specific_config("BTCUSDT", {"max_percentage": 10})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"step_percentage": 60, "max_percentage": 50}, "step_percentage 60 is larger than max_percentage 50"),
    ({"initial_percentage": 60, "max_percentage": 50}, "initial_percentage 60 is larger than max_percentage 50"),
    ({"max_percentage": 101}, "max_percentage must be between 0 and 100"),
    ({"step_interval_s": 0}, "step_interval_s must be greater than 0"),
    ({"safety_error_threshold": 2}, "safety_error_threshold is a fraction"),
    ({"max_percentage": True}, "max_percentage must be a whole number"),
    ({"auto_migration": "yes"}, "auto_migration must be true or false"),
    ({"step_percentage": 0}, "step_percentage and safety_max_step must be at least 1"),
    ({"no_such_field": 1}, "unknown configuration fields: no_such_field"),
])
def test_invalid_configs_are_refused_with_a_clear_message(overrides, message):
    with pytest.raises(ConfigError, match=message):
        preset("production").with_overrides(overrides)


def test_overrides_must_be_an_object():
    with pytest.raises(ConfigError, match="overrides must be an object"):
        preset("production").with_overrides([1, 2])


def test_config_survives_a_round_trip_through_json_data():
    config = preset("high_volume").with_overrides({"rollback_p95_ms": 20})

    assert MigrationConfig.from_dict(config.to_dict()) == config


def test_an_automatic_step_is_capped_by_the_safety_max_step():
    assert preset("production").with_overrides({"safety_max_step": 4}).auto_step == 4
