"""`manage.py migration_rollback --pair BTCUSDT [--reason ...]`."""

from django.core.management.base import BaseCommand

from migrations_admin import actions
from migrations_admin.management.commands._operator import cli_actor, run_action


class Command(BaseCommand):
    help = "Roll a pair back to the legacy book at 0%."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pair", required=True)
        parser.add_argument("--reason", default="rolled back from the command line")

    def handle(self, *args, **options) -> None:
        plan = run_action(actions.rollback, options["pair"], cli_actor(), options["reason"])
        self.stdout.write(f"{plan.pair.symbol}: {plan.state}")
