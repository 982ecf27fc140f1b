"""The shapes of the operator API: request bodies (strict: unknown fields are errors) and the plan."""

from rest_framework import serializers

from exchange.api.serializers import StrictSerializer
from migrations_admin.config import PRESET_NAMES
from migrations_admin.models import MigrationPlan


class StartSerializer(StrictSerializer):
    pair = serializers.CharField(max_length=20, help_text="Symbol of the pair, e.g. BTCUSDT.")
    target_percentage = serializers.IntegerField(min_value=0, max_value=100,
                                                 help_text="Where auto-migration goes; 0 is shadow mode.")
    finalize = serializers.BooleanField(default=False,
                                        help_text="Finalize (adaptive only) once healthy at 100%.")
    preset = serializers.ChoiceField(choices=PRESET_NAMES, required=False,
                                     help_text="Start with this preset instead of the pair's configuration.")


class PercentageSerializer(StrictSerializer):
    pair = serializers.CharField(max_length=20)
    percentage = serializers.IntegerField(min_value=0, max_value=100,
                                          help_text="The new share of orders the adaptive book executes.")


class PairSerializer(StrictSerializer):
    pair = serializers.CharField(max_length=20)


class RollbackSerializer(StrictSerializer):
    pair = serializers.CharField(max_length=20)
    reason = serializers.CharField(max_length=200, required=False, default="")


class PlanSerializer(serializers.ModelSerializer):
    pair = serializers.CharField(source="pair.symbol")

    class Meta:
        model = MigrationPlan
        fields = ["id", "pair", "state", "current_percentage", "target_percentage", "finalize_at_target",
                  "hold_reason", "last_step_at", "next_step_at", "config", "actor", "created_at", "updated_at"]
