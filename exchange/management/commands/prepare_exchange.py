"""`manage.py prepare_exchange [--demo-pairs]`: a deployment's one-off step before its processes start (the
Kubernetes migrate Job): production's safety checks, the schema migrated, the staff user `admin`, and the demo
pairs only when asked (`exchange/serving/preparation.py`). `run_exchange` does the same (with the demo pairs)
before it serves."""
from django.core.management.base import BaseCommand

from exchange.serving.preparation import prepare


class Command(BaseCommand):
    help = "Check production settings, migrate the database and create the admin user (and the demo pairs)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--demo-pairs", action="store_true", help="Also create the demo pairs.")

    def handle(self, *args, demo_pairs: bool, **options) -> None:
        prepare(self.stdout.write, self.stderr.write, demo_pairs=demo_pairs)
