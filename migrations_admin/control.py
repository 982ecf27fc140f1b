"""The operator's control screens (staff only): the migration dashboard, each pair's page, and the snapshot the
dashboard's websocket (`migrations_admin/consumers.py`) sends whenever it changes. Every action the screens offer
goes through the operator API (`/admin/migration/...`), so it is validated and audited like any other."""
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from exchange.market.page import websocket_url
from exchange.models import AuditLog, Divergence, HealthSample, TradingPair
from migrations_admin.config import PRESET_NAMES
from migrations_admin.models import MigrationEvent
from migrations_admin.status import migration_status

HISTORY_MINUTES = 30
AUDIT_ENTRIES = 15
EVENTS_SHOWN = 200
DIVERGENCES_SHOWN = 50
BOOKS = HealthSample.Book.values


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "migrations_admin/control.html", {
        "presets": PRESET_NAMES, "websocket_url": websocket_url(request),
        "default_preset": settings.MIGRATION_PRESET})


@staff_member_required
def pair_page(request: HttpRequest, symbol: str) -> HttpResponse:
    pair = TradingPair.objects.filter(symbol=symbol.upper()).first()
    if pair is None:
        raise Http404(f"unknown pair {symbol!r}")
    events = MigrationEvent.objects.filter(plan__pair=pair).select_related("plan").order_by("-id")[:EVENTS_SHOWN]
    divergences = Divergence.objects.filter(pair=pair).order_by("-id")[:DIVERGENCES_SHOWN]
    return render(request, "migrations_admin/control_pair.html", {
        "pair": pair, "events": events, "divergences": divergences, "websocket_url": websocket_url(request)})


def snapshot(pair: str | None = None) -> dict[str, Any]:
    """What the dashboard shows: each pair's status, both books' last minutes, the newest audit entries; with
    `pair`, also that pair's plan history and newest divergences (its page)."""
    shown = {"pairs": migration_status(), "series": _series(), "audit": _audit()}
    if pair is not None:
        shown["detail"] = pair_detail(pair)
    return shown


def pair_detail(symbol: str) -> dict[str, Any]:
    events = MigrationEvent.objects.filter(plan__pair__symbol=symbol).select_related("plan").order_by("-id")
    divergences = Divergence.objects.filter(pair__symbol=symbol).order_by("-id")
    return {
        "pair": symbol,
        "events": [{"id": event.id, "at": event.created_at, "kind": event.kind, "actor": event.actor,
                    "from_percentage": event.from_percentage, "to_percentage": event.to_percentage,
                    "reason": event.reason, "plan": event.plan_id, "plan_state": event.plan.state,
                    "figures": event.figures} for event in events[:EVENTS_SHOWN]],
        "divergences": [{"id": divergence.id, "at": divergence.created_at, "kind": divergence.kind,
                         "engine_sequence": divergence.engine_sequence, "command": divergence.command,
                         "legacy_events": divergence.legacy_events, "adaptive_events": divergence.adaptive_events}
                        for divergence in divergences[:DIVERGENCES_SHOWN]],
    }


def _series() -> dict[str, dict]:
    """Per pair: the minutes (epoch seconds) and, per book, p50/p95/p99 latency (µs), error rate, divergences."""
    since = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=HISTORY_MINUTES - 1)
    samples = HealthSample.objects.filter(minute__gte=since).select_related("pair").order_by("minute")
    series: dict[str, dict] = {}
    for sample in samples:
        pair = series.setdefault(sample.pair.symbol, {"minutes": [], "books": {book: {} for book in BOOKS}})
        stamp = int(sample.minute.timestamp())
        if not pair["minutes"] or pair["minutes"][-1] != stamp:
            pair["minutes"].append(stamp)
        index = len(pair["minutes"]) - 1
        for name, value in (("p50", sample.latency_p50_us), ("p95", sample.latency_p95_us),
                            ("p99", sample.latency_p99_us), ("error_rate", sample.error_rate),
                            ("divergences", sample.divergences)):
            column = pair["books"][sample.book].setdefault(name, [])
            column.extend([None] * (index + 1 - len(column)))
            column[index] = value
    for pair in series.values():
        for book in pair["books"].values():
            for column in book.values():
                column.extend([None] * (len(pair["minutes"]) - len(column)))
    return series


def _audit() -> list[dict]:
    """The newest entries about migrations: operators' and automatic decisions, the worker applying them,
    breaker trips, webhooks (not the worker's entries about single orders)."""
    entries = AuditLog.objects.filter(Q(action__startswith="migration_") | Q(action__startswith="engine_")
                                      | Q(action__startswith="breaker_")
                                      | Q(action__startswith="webhook_")).order_by("-id")[:AUDIT_ENTRIES]
    return [{"id": entry.id, "at": entry.created_at.isoformat(), "actor": entry.actor, "action": entry.action,
             "target": entry.target} for entry in entries]
