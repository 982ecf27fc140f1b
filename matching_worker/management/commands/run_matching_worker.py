"""`manage.py run_matching_worker --shard N`: the matching worker of one shard of pairs. In a Kubernetes
StatefulSet, `--shard-from-hostname` takes the shard from the pod's ordinal (`matching-worker-3` serves shard 3),
so scaling the StatefulSet to N replicas serves shards 0 to N-1."""
from django.core.management.base import BaseCommand

from exchange.serving.processes import shard_of_this_host
from matching_worker.serve import serve_shard


class Command(BaseCommand):
    help = "Run the matching worker of one shard until SIGTERM (it finishes the batch in hand)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--shard", type=int, default=0, help="The shard whose pairs this worker matches.")
        parser.add_argument("--shard-from-hostname", action="store_true",
                            help="The shard is the number that ends $HOSTNAME or the host name (a StatefulSet pod's "
                                 "ordinal).")
        parser.add_argument("--max-batch", type=int, default=5000,
                            help="Most inbox entries committed in one transaction (default 5000).")
        parser.add_argument("--heartbeat", type=float, default=2.0, help="Seconds between heartbeats.")

    def handle(self, *args, shard: int, shard_from_hostname: bool, max_batch: int, heartbeat: float,
               **options) -> None:
        serve_shard(shard_of_this_host() if shard_from_hostname else shard, max_batch, heartbeat)

