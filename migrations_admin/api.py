"""The operator API of engine migrations (the deployment guide's /admin/... paths): staff only, token or
session. Each view checks the body's shape and makes one call into `migrations_admin.actions`, which
validates against the pair's state and configuration and audits the change."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from migrations_admin import actions
from migrations_admin.serializers import (
    PairSerializer,
    PercentageSerializer,
    PlanSerializer,
    RollbackSerializer,
    StartSerializer,
)
from migrations_admin.status import breaker_status, migration_status


def operator(request: Request) -> str:
    return f"operator:{request.user.get_username()}"


def valid(serializer_class: type[Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class OperatorView(APIView):
    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser]


PAIR_ARRAY = OpenApiResponse({"type": "array", "items": {"type": "object"}}, description="One object per pair.")


@extend_schema(request=StartSerializer, responses={201: PlanSerializer})
class StartView(OperatorView):
    """Start migrating a pair toward a target percentage."""

    def post(self, request: Request) -> Response:
        body = valid(StartSerializer, request.data)
        plan = actions.start_migration(body["pair"], body["target_percentage"], operator(request),
                                       finalize_at_target=body["finalize"], preset_name=body.get("preset"))
        return Response(PlanSerializer(plan).data, status=status.HTTP_201_CREATED)


@extend_schema(request=PercentageSerializer, responses=PlanSerializer)
class PercentageView(OperatorView):
    """Move a migrating pair to a percentage (it becomes the plan's target)."""

    def post(self, request: Request) -> Response:
        body = valid(PercentageSerializer, request.data)
        plan = actions.set_percentage(body["pair"], body["percentage"], operator(request))
        return Response(PlanSerializer(plan).data)


@extend_schema(request=PairSerializer, responses=PlanSerializer)
class FinalizeView(OperatorView):
    """Drop the legacy book of a pair at 100%."""

    def post(self, request: Request) -> Response:
        plan = actions.finalize(valid(PairSerializer, request.data)["pair"], operator(request))
        return Response(PlanSerializer(plan).data)


@extend_schema(request=PairSerializer, responses=PlanSerializer)
class PauseView(OperatorView):
    """Hold a migrating pair at its percentage: no automatic step until it is resumed."""

    def post(self, request: Request) -> Response:
        plan = actions.pause(valid(PairSerializer, request.data)["pair"], operator(request))
        return Response(PlanSerializer(plan).data)


@extend_schema(request=PairSerializer, responses=PlanSerializer)
class ResumeView(OperatorView):
    """Let auto-migration step a paused pair again."""

    def post(self, request: Request) -> Response:
        plan = actions.resume(valid(PairSerializer, request.data)["pair"], operator(request))
        return Response(PlanSerializer(plan).data)


@extend_schema(request=RollbackSerializer, responses=PlanSerializer)
class RollbackView(OperatorView):
    """Back to the legacy book at 0%."""

    def post(self, request: Request) -> Response:
        body = valid(RollbackSerializer, request.data)
        plan = actions.rollback(body["pair"], operator(request), body["reason"] or "rolled back by operator")
        return Response(PlanSerializer(plan).data)


@extend_schema(request=None, responses=inline_serializer(
    "EmergencyStop", {"stopped": serializers.ListField(child=serializers.CharField())}))
class EmergencyStopView(OperatorView):
    """Every pair back to the legacy book at once; the answer names the pairs stopped."""

    def post(self, request: Request) -> Response:
        return Response({"stopped": actions.emergency_stop(operator(request))})


@extend_schema(responses=PAIR_ARRAY)
class StatusView(OperatorView):
    """A JSON array: one object per pair."""

    def get(self, request: Request) -> Response:
        actions.record_read(operator(request), "migration_status")
        return Response(migration_status())


@extend_schema(responses=PAIR_ARRAY)
class BreakerStatusView(OperatorView):
    """A JSON array: each pair's circuit breaker."""

    def get(self, request: Request) -> Response:
        actions.record_read(operator(request), "breaker_status")
        return Response(breaker_status())


@extend_schema(request=None, responses={202: inline_serializer("BreakerResetAccepted", {
    "pair": serializers.CharField(), "command": serializers.IntegerField(), "kind": serializers.CharField(),
    "status": serializers.CharField()})})
class BreakerResetView(OperatorView):
    """Ask the worker to close a pair's breaker."""

    def post(self, request: Request, pair: str) -> Response:
        command = actions.reset_breaker(pair, operator(request), status_code=status.HTTP_404_NOT_FOUND)
        return Response({"pair": command.pair.symbol, "command": command.id, "kind": command.kind,
                         "status": command.status}, status=status.HTTP_202_ACCEPTED)
