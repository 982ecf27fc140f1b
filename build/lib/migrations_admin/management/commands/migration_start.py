"""`manage.py migration_start --pair BTCUSDT --target 10 [--finalize]`."""

from django.core.management.base import BaseCommand

from migrations_admin import actions
from migrations_admin.management.commands._operator import cli_actor, run_action


class Command(BaseCommand):
    help = "Start migrating a pair to the adaptive book toward a target percentage (0: shadow mode)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pair", required=True)
        parser.add_argument("--target", type=int, required=True, help="Target percentage.")
        parser.add_argument("--finalize", action="store_true", help="Finalize once healthy at 100%%.")

    def handle(self, *args, **options) -> None:
        plan = run_action(actions.start_migration, options["pair"], options["target"], cli_actor(),
                          finalize_at_target=options["finalize"])
        self.stdout.write(f"{plan.pair.symbol}: {plan.state} at {plan.current_percentage}% "
                          f"toward {plan.target_percentage}%")
