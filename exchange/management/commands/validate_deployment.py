"""`manage.py validate_deployment` (`make validate-deployment ARGS=...`): the deployment guide's success criteria
measured against a running instance, each printed with its figure and PASS, FAIL or SKIP; exit 1 on any FAIL
(`exchange/ops/deployment_check.py` says how each is measured)."""
import os

from django.core.management.base import BaseCommand

from exchange.ops.deployment_check import FAIL, SKIP, Options, validate


class Command(BaseCommand):
    help = "Measure the deployment guide's success criteria against a running instance; exit 1 on any FAIL."

    def add_arguments(self, parser) -> None:
        defaults = Options()
        parser.add_argument("--base-url", default=os.environ.get("EXCHANGE_URL", defaults.base_url))
        parser.add_argument("--token", default=os.environ.get("EXCHANGE_TOKEN", ""),
                            help="a staff user's API token (default $EXCHANGE_TOKEN; without, a local staff user "
                                 "`deployment-validator` is used)")
        parser.add_argument("--tests", choices=("integration", "all", "none"), default=defaults.tests,
                            help="which automated tests to run from this checkout (integration)")
        parser.add_argument("--duration", default=defaults.duration, help="the load test's length (60s)")
        parser.add_argument("--rate", type=float, default=defaults.rate,
                            help="orders/s the load test offers (10000, the guide's throughput)")
        parser.add_argument("--min-throughput", type=float, default=defaults.min_throughput,
                            help="orders/s the load test must achieve (10000)")
        parser.add_argument("--max-p95-ms", type=float, default=defaults.max_p95_ms)
        parser.add_argument("--max-error-rate", type=float, default=defaults.max_error_rate)
        parser.add_argument("--load-pairs", default=defaults.load_pairs, help="the load test's pairs")
        parser.add_argument("--check-pair", default=defaults.check_pair,
                            help="the validator's own pair for the priority, trade and rollback checks, created "
                                 "if missing and halted after (CHECKUSDT)")
        parser.add_argument("--stream-orders", type=int, default=defaults.stream_orders)
        parser.add_argument("--prometheus-url", default=os.environ.get("PROMETHEUS_URL", ""),
                            help="ask this Prometheus whether the alert rules are loaded")

    def handle(self, *args, **options) -> None:
        chosen = Options(**{key: options[key] for key in Options.__dataclass_fields__ if key in options},
                         log=lambda text: self.stderr.write(text))
        if not chosen.check_pair.isalnum() or not chosen.check_pair.endswith("USDT") or \
                chosen.check_pair != chosen.check_pair.upper():
            self.stderr.write(f"--check-pair={chosen.check_pair}: an upper-case symbol ending in USDT, like CHECKUSDT")
            raise SystemExit(2)
        results = validate(chosen)
        for criterion in results:
            self.stdout.write(criterion.line())
        failed = [criterion.name for criterion in results if criterion.verdict == FAIL]
        skipped = [criterion.name for criterion in results if criterion.verdict == SKIP]
        self.stdout.write(f"FAIL: {', '.join(failed)}" if failed else
                          "PASS" + (f" ({', '.join(skipped)} skipped)" if skipped else ""))
        if failed:
            raise SystemExit(1)
