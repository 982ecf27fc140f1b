"""`manage.py serve_websockets`: the websocket server alone, as `run_exchange` starts it (uvicorn with the
Channels application) on $WEBSOCKET_PORT ($PORT + 1), for a container of its own; it becomes the server (exec)."""
import os

from django.core.management.base import BaseCommand

from exchange.management.commands.run_exchange import websocket_server_argv


class Command(BaseCommand):
    help = "Serve the websocket market data and order updates on $WEBSOCKET_PORT ($PORT + 1)."

    def handle(self, *args, **options) -> None:
        port = int(os.environ.get("PORT") or 8080)
        argv = websocket_server_argv(int(os.environ.get("WEBSOCKET_PORT") or port + 1))
        os.environ.setdefault("DB_CONN_MAX_AGE", "0")     # as run_exchange: a thread per request, none kept
        os.execv(argv[0], argv)
