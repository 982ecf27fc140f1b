"""Plain Django views of the exchange that are not part of the REST API."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from exchange.api_errors import error_body
from exchange.health import health_report, role_report
from exchange.process_metrics import SystemMetrics
from exchange.published_market import store


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """Liveness: this process answers, whatever its dependencies do."""
    return JsonResponse({"status": "ok"})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """The database, Redis and every shard's matching worker: 200 when all serve, else 503 naming what does not."""
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """/health's parts and Celery beat: the whole system is ready. `?role=web`: what this web process needs to
    serve (the database and Redis), its readiness probe."""
    role = request.GET.get("role", "system")
    if role not in ("system", "web"):
        return JsonResponse(error_body("invalid_request", "role must be system or web (the other roles are "
                                       "checked by `health_check --role` in their own containers)."), status=400)
    healthy, report = role_report(role)
    return JsonResponse(report, status=200 if healthy else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: this process's (django-prometheus) and every worker's and Celery's, each sample labelled
    with its `process` (`exchange/process_metrics.py`); with METRICS_TOKEN set, only for the scraper that presents
    it as `Authorization: Bearer <token>`."""
    token = settings.METRICS_TOKEN
    if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
        response = JsonResponse(error_body("not_authenticated", "The metrics need the scraper's bearer token."),
                                status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(SystemMetrics(store())), content_type=CONTENT_TYPE_LATEST)
