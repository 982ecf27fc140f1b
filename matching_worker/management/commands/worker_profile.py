"""`manage.py worker_profile --shard N [--kind cpu|heap] [--seconds S] [--limit L] [--output FILE]`: a running
matching worker's CPU profile (collapsed stacks for flamegraph.pl, speedscope or inferno) or its top allocations
(JSON), the deployment guide's pprof lines for a worker (`matching_worker/profiles.py`)."""
from django.core.management.base import BaseCommand, CommandError

from matching_worker.profiles import KINDS, ProfileRefused, request_profile


class Command(BaseCommand):
    help = "Profile a running matching worker: CPU (collapsed stacks) or heap (top allocations, JSON)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--shard", type=int, required=True, help="The worker's shard.")
        parser.add_argument("--kind", choices=KINDS, default="cpu")
        parser.add_argument("--seconds", type=float, default=10.0, help="How long to profile (0.1 to 60).")
        parser.add_argument("--limit", type=int, default=30, help="Heap: how many lines.")
        parser.add_argument("--output", help="Write the profile to this file instead of standard output.")

    def handle(self, *args, shard: int, kind: str, seconds: float, limit: int, output: str | None, **options):
        try:
            answer = request_profile(shard, kind, seconds, limit)
        except ProfileRefused as error:
            raise CommandError(error.message) from None
        if output:
            with open(output, "w") as file:
                file.write(answer)
            self.stderr.write(f"shard {shard}: {kind} profile of {seconds:g} s written to {output}")
        else:
            self.stdout.write(answer, ending="" if answer.endswith("\n") else "\n")
