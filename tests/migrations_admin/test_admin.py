"""The admin screens: settings and per-pair configs are validated through MigrationConfig; plans and events
are read-only."""

import pytest
from django.contrib.auth.models import User

from migrations_admin import actions
from migrations_admin.models import MigrationSettings, PairMigrationConfig
from migrations_admin.services import effective_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client, db):
    client.force_login(User.objects.create_superuser("operator", "operator@example.com", None))
    return client


def test_settings_form_refuses_an_invalid_override(operator_client):
    response = operator_client.post("/backoffice/migrations_admin/migrationsettings/add/", {
        "adaptive_order_books_enabled": "on", "default_preset": "conservative",
        "overrides": '{"step_percentage": 80}'})

    assert response.status_code == 200
    assert "step_percentage 80 is larger than max_percentage 50" in response.content.decode()
    assert not MigrationSettings.objects.exists()


def test_pair_config_form_saves_a_valid_override(operator_client, btc):
    response = operator_client.post("/backoffice/migrations_admin/pairmigrationconfig/add/", {
        "pair": btc.id, "preset": "testing", "overrides": '{"max_percentage": 80}'})

    assert response.status_code == 302
    assert effective_config(btc).max_percentage == 80
    assert effective_config("ETHUSDT").max_percentage == 100


def test_pair_config_form_refuses_an_unknown_field(operator_client, btc):
    response = operator_client.post("/backoffice/migrations_admin/pairmigrationconfig/add/", {
        "pair": btc.id, "preset": "", "overrides": '{"speed": 11}'})

    assert "unknown configuration fields: speed" in response.content.decode()
    assert not PairMigrationConfig.objects.exists()


def test_effective_config_layers_environment_admin_and_pair(btc, settings):
    settings.MIGRATION_PRESET = "aggressive"
    MigrationSettings.objects.create(overrides={"step_interval_s": 60})
    PairMigrationConfig.objects.create(pair=btc, overrides={"max_percentage": 40})

    assert (effective_config(btc).initial_percentage, effective_config(btc).step_interval_s,
            effective_config(btc).max_percentage) == (20, 60, 40)
    assert effective_config("ETHUSDT").max_percentage == 100


@pytest.mark.parametrize("model", ["migrationplan", "migrationevent", "migrationsettings", "pairmigrationconfig"])
def test_the_screens_list(operator_client, btc, model):
    actions.start_migration("BTCUSDT", 20, "operator:ops")

    assert operator_client.get(f"/backoffice/migrations_admin/{model}/").status_code == 200


def test_plans_cannot_be_changed_in_the_admin(operator_client, btc):
    plan = actions.start_migration("BTCUSDT", 20, "operator:ops")

    response = operator_client.post(f"/backoffice/migrations_admin/migrationplan/{plan.id}/change/",
                                    {"current_percentage": 90})

    assert response.status_code == 403
