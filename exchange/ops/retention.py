"""Retention: the tables that grow with time and are not trading records are pruned past configurable ages, so
none grows without bound. Orders and trades are never pruned here: they are the exchange's books.

- health samples (a row per pair, book and minute): RETENTION_HEALTH_SAMPLE_DAYS;
- engine commands that were applied or rejected (pending ones never): RETENTION_ENGINE_COMMAND_DAYS;
- audit rows: RETENTION_AUDIT_DAYS (long: they are what an auditor asks for).

A setting of 0 keeps that table forever. Rows go in chunks of CHUNK, each its own short transaction, so the
prune never holds locks the worker or the API wait for. Each prune is itself audited, with what it removed.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from exchange.models import AuditLog

CHUNK = 10_000
ACTOR = "celery:retention"
# (what, table, time column, extra condition, setting)
PRUNED = (
    ("health_samples", "exchange_healthsample", "minute", "", "RETENTION_HEALTH_SAMPLE_DAYS"),
    ("engine_commands", "exchange_enginecommand", "created_at", " AND status <> 'pending'",
     "RETENTION_ENGINE_COMMAND_DAYS"),
    ("audit_rows", "exchange_auditlog", "created_at", "", "RETENTION_AUDIT_DAYS"),
)


def prune(now: datetime) -> dict[str, int]:
    """Deletes what is past its age; returns the rows removed per table, as audited."""
    removed, cutoffs = {}, {}
    for what, table, column, condition, setting in PRUNED:
        days = getattr(settings, setting)
        if days <= 0:
            continue
        cutoff = now - timedelta(days=days)
        cutoffs[what] = cutoff.isoformat()
        removed[what] = _delete_older(table, column, condition, cutoff)
    AuditLog.objects.create(actor=ACTOR, action="retention_pruned", target="tables",
                            details={"removed": removed, "older_than": cutoffs})
    return removed


def _delete_older(table: str, column: str, condition: str, cutoff: datetime) -> int:
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < %s{condition}"
                           f" LIMIT {CHUNK})", [cutoff])
            deleted = cursor.rowcount
        total += deleted
        if deleted < CHUNK:
            return total
