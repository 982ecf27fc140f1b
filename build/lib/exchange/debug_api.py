"""Troubleshooting, for staff. `/admin/slow-queries`: the slowest recent SQL statements (`exchange/slow_queries.py`).
`/debug/pprof/heap` and `/debug/pprof/profile`: a running web process's top allocations and CPU profile
(`exchange/profiling.py`). Each holds one of the process's threads for the window it measures. They are
troubleshooting tools, not the API: left out of the OpenAPI schema (and so of its contract tests, which would
hold a thread a minute per generated request)."""
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.profiling import cpu_profile, heap_top
from exchange.slow_queries import slowest_statements


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
