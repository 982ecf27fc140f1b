"""`manage.py health_check [--role R] [--shard N]` (`/app/health-check` in the image): the readiness checks for an
exec probe (the deployment guide's `kubectl exec … /app/health-check`): prints the report as JSON and exits 0
when every part serves, 1 otherwise. Without a role, the whole system's (`/ready`); with one, what that process
needs (`exchange/ops/health.py`, `role_report`)."""
import json

from django.core.management.base import BaseCommand, CommandError

from exchange.ops.health import ROLES, health_report, role_report
from exchange.serving.processes import shard_of_this_host


class Command(BaseCommand):
    help = "Check what a process (or, by default, the whole system) needs to serve; exit 1 if any part fails."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--without-beat", action="store_true",
                            help="The whole system without Celery beat (the checks of /health).")
        parser.add_argument("--role", choices=ROLES, default="system",
                            help="web, worker (with --shard), celery-worker, celery-beat, or system (default).")
        parser.add_argument("--shard", type=int, help="The worker's shard (role worker).")
        parser.add_argument("--shard-from-hostname", action="store_true",
                            help="The worker's shard is the number that ends the host name (its pod's ordinal).")

    def handle(self, *args, without_beat: bool, role: str, shard: int | None, shard_from_hostname: bool,
               **options) -> None:
        if shard_from_hostname:
            shard = shard_of_this_host()
        if role == "worker" and shard is None:
            raise CommandError("--role worker needs --shard")
        if without_beat:
            healthy, report = health_report(with_beat=False)
        else:
            healthy, report = role_report(role, shard)
        self.stdout.write(json.dumps(report))
        if not healthy:
            failing = ", ".join(part for part, result in report["checks"].items() if result != "ok")
            raise CommandError(f"not ready: {failing}")

