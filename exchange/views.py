"""Plain Django views of the exchange that are not part of the REST API."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from exchange.api_errors import error_body
from exchange.health import health_report


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness: 200 when the database and Redis answer, 503 otherwise."""
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (django-prometheus); with METRICS_TOKEN set, only for the scraper that presents it
    as `Authorization: Bearer <token>`."""
    token = settings.METRICS_TOKEN
    if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
        response = JsonResponse(error_body("not_authenticated", "The metrics need the scraper's bearer token."),
                                status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return ExportToDjangoView(request)
