"""The operations endpoints: the probes (`/live`, `/health`, `/ready`), Prometheus' `/metrics`, and for staff the
troubleshooting tools: `/admin/slow-queries` (`exchange/ops/slow_queries.py`), `/debug/pprof/heap` and
`/debug/pprof/profile` (`exchange/ops/profiling.py`).

The troubleshooting views each hold one of the process's threads for the window they measure; they are tools,
not the API: left out of the OpenAPI schema (and so of its contract tests, which would hold a thread a minute
per generated request)."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.api.json_errors import error_body
from exchange.ops.health import health_report, role_report
from exchange.ops.process_metrics import SystemMetrics
from exchange.ops.profiling import cpu_profile, heap_top
from exchange.ops.slow_queries import slowest_statements
from exchange.stores import shared_redis


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
    with its `process` (`exchange/ops/process_metrics.py`); with METRICS_TOKEN set, only for the scraper that presents
    it as `Authorization: Bearer <token>`."""
    token = settings.METRICS_TOKEN
    if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
        response = JsonResponse(error_body("not_authenticated", "The metrics need the scraper's bearer token."),
                                status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    families = SystemMetrics(shared_redis(decode_responses=True))
    return HttpResponse(generate_latest(families), content_type=CONTENT_TYPE_LATEST)


class WindowSerializer(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0.1, max_value=60, default=5)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=30)


def window(request: Request) -> dict:
    asked = WindowSerializer(data=request.query_params)
    asked.is_valid(raise_exception=True)
    return asked.validated_data


@extend_schema(exclude=True)
class HeapView(APIView):
    """`?seconds=5&limit=30`: the lines holding the most memory, with the bytes and allocations each holds."""

    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> Response:
        asked = window(request)
        return Response({"seconds": asked["seconds"], "top": heap_top(asked["seconds"], asked["limit"])})


@extend_schema(exclude=True)
class ProfileView(APIView):
    """`?seconds=10`: every thread's stacks sampled for that long, as collapsed stacks (text/plain) for
    flamegraph.pl, speedscope or inferno."""

    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(cpu_profile(window(request)["seconds"]), content_type="text/plain; charset=utf-8")


class SlowQueriesSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=200, default=20)
    min_calls = serializers.IntegerField(min_value=1, default=1)


@extend_schema(parameters=[SlowQueriesSerializer], responses=OpenApiResponse(
    {"type": "object", "properties": {"source": {"type": "string"}, "statements": {"type": "array"}}},
    description="`source`: pg_stat_statements, or the processes' own records where the server lacks it."))
class SlowQueriesView(APIView):
    """The statements with the highest mean time: query (literals as `?`), calls, mean, max and total ms, and
    origin (the database role, or the processes that ran it)."""

    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> Response:
        asked = SlowQueriesSerializer(data=request.query_params)
        asked.is_valid(raise_exception=True)
        return Response(slowest_statements(asked.validated_data["limit"], asked.validated_data["min_calls"]))
