"""`manage.py migration_percentage --pair BTCUSDT --percentage 25`."""

from django.core.management.base import BaseCommand

from migrations_admin import actions
from migrations_admin.management.commands._operator import cli_actor, run_action


class Command(BaseCommand):
    help = "Move a migrating pair to a percentage (it becomes the plan's target)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pair", required=True)
        parser.add_argument("--percentage", type=int, required=True)

    def handle(self, *args, **options) -> None:
        plan = run_action(actions.set_percentage, options["pair"], options["percentage"], cli_actor())
        self.stdout.write(f"{plan.pair.symbol}: {plan.state} at {plan.current_percentage}%")
