"""`manage.py warm_market_data --pairs=BTCUSDT,ETHUSDT` (`scripts/cache-warmup.sh`): has each pair's worker
write the pair's whole published market data again and waits for it (`exchange/market/republish.py`)."""
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.market.republish import RepublishFailed, republish


class Command(BaseCommand):
    help = "Have the matching workers publish the pairs' whole market data again (book, trades, ticker), and wait."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pairs", default="", help="comma-separated symbols; all pairs when absent")
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the workers (30)")

    def handle(self, *args, pairs: str, timeout: float, **options) -> None:
        symbols = [symbol.strip().upper() for symbol in pairs.split(",") if symbol.strip()]
        try:
            republish(symbols, timeout, self.stdout.write)
        except RepublishFailed as error:
            raise CommandError(error.message) from None
