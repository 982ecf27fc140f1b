"""`manage.py circuit_breaker_reset --pair BTCUSDT`."""

from django.core.management.base import BaseCommand

from migrations_admin import actions
from migrations_admin.management.commands._operator import cli_actor, run_action


class Command(BaseCommand):
    help = "Ask the matching worker to close a pair's circuit breaker."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pair", required=True)

    def handle(self, *args, **options) -> None:
        command = run_action(actions.reset_breaker, options["pair"], cli_actor())
        self.stdout.write(f"{command.pair.symbol}: reset_breaker sent (command {command.id})")
