"""The browser tests' processes: an ASGI server (daphne: pages and websockets on one port) on the test database,
and Debian's Chromium driven by Playwright. Screenshots go to var/test-artifacts/screens/."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import sync_playwright

from tests.integration.conftest import ROOT, free_port, wait_for_port, worker_environment

SCREENS = ROOT / "var" / "test-artifacts" / "screens"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "control-screens-test"



@pytest.fixture
def server():
    """daphne serving exchange.asgi on a free port; the pages tell the browser to open websockets there too."""
    port = free_port()
    env = {**worker_environment(), "REDIS_URL": settings.REDIS_URL, "WEBSOCKET_URL": f"ws://127.0.0.1:{port}",
           "CONTROL_REFRESH_SECONDS": "1", "DB_CONN_MAX_AGE": "0"}
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                "exchange.asgi:application"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, process, "daphne")
    yield f"http://127.0.0.1:{port}"
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(20)


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are synchronous all the
    # same (Playwright's documented setting for Django).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def screenshot(page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


def release_database() -> None:
    """Closes the connection the test's own ORM calls used. Under Playwright's sync API they get a connection of
    their own (Django's connections are per context), which nothing else would close: the test database could
    then not be dropped at the end of the run."""
    connection.close()
