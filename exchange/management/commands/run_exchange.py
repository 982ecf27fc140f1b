"""`manage.py run_exchange`: prepare the database, then run every process of the exchange until stopped
(`exchange/serving/processes.py`)."""
import sys

from django.core.management.base import BaseCommand, CommandError

from exchange.serving.processes import run_exchange
from exchange.serving.supervisor import AlreadyRunning


class Command(BaseCommand):
    help = "Migrate, create the demo pairs and the admin user, then serve the exchange on $PORT (8080)."

    def handle(self, *args, **options) -> None:
        try:
            sys.exit(run_exchange(self.stdout.write, self.stderr.write))
        except AlreadyRunning as error:
            raise CommandError(str(error)) from None
