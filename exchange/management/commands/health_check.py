"""`manage.py health_check`: the readiness checks of `/ready` for an exec probe (the deployment guide's
`kubectl exec … /app/health-check`): prints the report as JSON and exits 0 when every part serves, 1 otherwise."""
import json

from django.core.management.base import BaseCommand, CommandError

from exchange.health import health_report


class Command(BaseCommand):
    help = "Check the database, Redis, every shard's matching worker and Celery beat; exit 1 if any fails."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--without-beat", action="store_true",
                            help="Leave Celery beat out (the checks of /health).")

    def handle(self, *args, without_beat: bool, **options) -> None:
        healthy, report = health_report(with_beat=not without_beat)
        self.stdout.write(json.dumps(report))
        if not healthy:
            failing = ", ".join(part for part, result in report["checks"].items() if result != "ok")
            raise CommandError(f"not ready: {failing}")
