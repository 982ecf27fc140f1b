"""`manage.py migration_emergency_stop`."""

from django.core.management.base import BaseCommand

from migrations_admin import actions
from migrations_admin.management.commands._operator import cli_actor, run_action


class Command(BaseCommand):
    help = "Every pair back to the legacy book at once; every live plan stopped."

    def handle(self, *args, **options) -> None:
        stopped = run_action(actions.emergency_stop, cli_actor())
        self.stdout.write(f"stopped: {', '.join(stopped)}" if stopped else "nothing to stop")
