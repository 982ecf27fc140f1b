"""`manage.py serve_web`: the HTTP server alone, as `run_exchange` starts it (Granian, WEB_PROCESSES ×
WEB_THREADS) on $PORT (8080), for a container of its own. The command becomes the server (exec): it is the
container's main process and gets its SIGTERM."""
import os

from django.core.management.base import BaseCommand

from exchange.serving.processes import web_port, web_server_argv


class Command(BaseCommand):
    help = "Serve the HTTP API on $PORT (8080) with the exchange's HTTP server."

    def handle(self, *args, **options) -> None:
        argv = web_server_argv(web_port())
        os.execv(argv[0], argv)
