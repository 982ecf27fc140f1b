"""The retention prune: health samples, finished engine commands and audit rows past their ages go, everything
younger (and every pending command) stays, and the prune is audited."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchange.models import AuditLog, EngineCommand, HealthSample
from exchange.ops import retention
from exchange.trading.pairs import ensure_demo_pairs

pytestmark = pytest.mark.django_db


def aged(model, days: float, **fields):
    row = model.objects.create(**fields)
    column = "minute" if model is HealthSample else "created_at"
    model.objects.filter(pk=row.pk).update(**{column: timezone.now() - timedelta(days=days)})
    return row


def test_rows_past_their_age_are_pruned_and_the_rest_kept(settings):
    settings.RETENTION_HEALTH_SAMPLE_DAYS, settings.RETENTION_ENGINE_COMMAND_DAYS = 14, 90
    settings.RETENTION_AUDIT_DAYS = 400
    btc = ensure_demo_pairs()[0]
    aged(HealthSample, 15, pair=btc, minute=timezone.now(), book="legacy")
    new_sample = aged(HealthSample, 13, pair=btc, minute=timezone.now() - timedelta(minutes=1), book="legacy")
    aged(EngineCommand, 91, pair=btc, kind="rollback", actor="ops", status="applied")
    old_pending = aged(EngineCommand, 91, pair=btc, kind="rollback", actor="ops", status="pending")
    new_rejected = aged(EngineCommand, 10, pair=btc, kind="rollback", actor="ops", status="rejected")
    old_audit = aged(AuditLog, 401, actor="ops", action="migration_start", target="pair:BTCUSDT", details={})
    new_audit = aged(AuditLog, 399, actor="ops", action="migration_start", target="pair:BTCUSDT", details={})

    removed = retention.prune(timezone.now())

    assert removed == {"health_samples": 1, "engine_commands": 1, "audit_rows": 1}
    assert set(HealthSample.objects.values_list("pk", flat=True)) == {new_sample.pk}
    assert set(EngineCommand.objects.values_list("pk", flat=True)) == {old_pending.pk, new_rejected.pk}
    assert not AuditLog.objects.filter(pk=old_audit.pk).exists() and AuditLog.objects.filter(pk=new_audit.pk).exists()
    record = AuditLog.objects.get(action="retention_pruned")
    assert (record.actor, record.details["removed"]) == ("celery:retention", removed)


def test_an_age_of_zero_keeps_the_table_forever_and_chunks_delete_everything(settings, monkeypatch):
    settings.RETENTION_HEALTH_SAMPLE_DAYS, settings.RETENTION_AUDIT_DAYS = 1, 0
    monkeypatch.setattr(retention, "CHUNK", 2)
    btc = ensure_demo_pairs()[0]
    for minute in range(5):
        aged(HealthSample, 2 + minute, pair=btc, minute=timezone.now() - timedelta(minutes=minute), book="adaptive")
    aged(AuditLog, 10_000, actor="ops", action="migration_start", target="pair:BTCUSDT", details={})

    removed = retention.prune(timezone.now())

    assert removed["health_samples"] == 5 and "audit_rows" not in removed
    assert HealthSample.objects.count() == 0 and AuditLog.objects.filter(action="migration_start").count() == 1


def test_the_prune_is_on_celery_beats_schedule():
    import exchange.tasks  # noqa: F401 - autodiscovery imports it in Celery's processes
    from exchange.celery import app

    app.loader.import_default_modules()
    assert "prune_old_records" in app.conf.beat_schedule
