"""`manage.py migration_status [--json]`: the same objects as GET /admin/migration/status."""

import json

from django.core.management.base import BaseCommand
from django.core.serializers.json import DjangoJSONEncoder

from migrations_admin.status import migration_status

COLUMNS = ("{pair:<10} {state:<12} {mode:<14} {current:>7} {requested:>9} {target:>7} {breaker:<9} {error_rate:>10}"
           "  {next}")


class Command(BaseCommand):
    help = ("Each pair's migration: plan state, engine mode, percentage applied and requested (* not applied by the "
            "worker yet), breaker, last minute's adaptive health.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the JSON array the API answers.")

    def handle(self, *args, **options) -> None:
        statuses = migration_status()
        if options["json"]:
            self.stdout.write(json.dumps(statuses, cls=DjangoJSONEncoder, indent=2))
            return
        self.stdout.write(COLUMNS.format(pair="pair", state="state", mode="mode", current="current",
                                         requested="requested",
                                         target="target", breaker="breaker", error_rate="error rate",
                                         next="next step"))
        for status in statuses:
            adaptive = status["health"]["adaptive"]
            self.stdout.write(COLUMNS.format(
                pair=status["pair"], state=status["state"], mode=status["mode"],
                current=f"{status['current_percentage']}%",
                requested=f"{status['requested_percentage']}%" + ("" if status["applied"] else "*"),
                target="-" if status["target_percentage"] is None else f"{status['target_percentage']}%",
                breaker=status["breaker_state"],
                error_rate="-" if adaptive is None else f"{adaptive['error_rate']:.2%}",
                next=status["next_step_at"] or "-"))
