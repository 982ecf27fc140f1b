"""`manage.py serve_websockets`: the websocket server alone, as `run_exchange` starts it (uvicorn with the
Channels application) on $WEBSOCKET_PORT ($PORT + 1), for a container of its own; it becomes the server (exec)."""
import os

from django.core.management.base import BaseCommand

from exchange.serving.processes import websocket_port, websocket_server_argv


class Command(BaseCommand):
    help = "Serve the websocket market data and order updates on $WEBSOCKET_PORT ($PORT + 1)."

    def handle(self, *args, **options) -> None:
        argv = websocket_server_argv(websocket_port())
        os.environ.setdefault("DB_CONN_MAX_AGE", "0")     # as run_exchange: a thread per request, none kept
        os.execv(argv[0], argv)
