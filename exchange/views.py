"""Plain Django views of the exchange that are not part of the REST API."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from exchange.health import health_report


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness: 200 when the database and Redis answer, 503 otherwise."""
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)
