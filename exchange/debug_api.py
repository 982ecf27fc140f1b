"""`/debug/pprof/heap` and `/debug/pprof/profile`, for staff: a running web process's top allocations and CPU
profile (`exchange/profiling.py`). Each holds one of the process's threads for the window it measures. They are
troubleshooting tools, not the API: left out of the OpenAPI schema (and so of its contract tests, which would
hold a thread a minute per generated request)."""
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.profiling import cpu_profile, heap_top


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
