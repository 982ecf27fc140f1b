"""`manage.py run_matching_worker --shard N`: the matching worker of one shard of pairs."""
from django.core.management.base import BaseCommand

from matching_worker.metrics import WorkerMetrics
from matching_worker.publish import MarketPublisher
from matching_worker.serve import ShardServer
from matching_worker.worker import MatchingWorker


class Command(BaseCommand):
    help = "Run the matching worker of one shard until SIGTERM (it finishes the batch in hand)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--shard", type=int, default=0, help="The shard whose pairs this worker matches.")
        parser.add_argument("--max-batch", type=int, default=5000,
                            help="Most inbox entries committed in one transaction (default 5000).")
        parser.add_argument("--heartbeat", type=float, default=2.0, help="Seconds between heartbeats.")

    def handle(self, *args, shard: int, max_batch: int, heartbeat: float, **options) -> None:
        metrics = WorkerMetrics()
        worker = MatchingWorker(shard, max_batch=max_batch, heartbeat_every=heartbeat,
                                publisher=MarketPublisher(metrics), metrics=metrics)
        ShardServer(worker).run()
