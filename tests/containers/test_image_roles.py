"""The image, built and run as a deployment runs it: `scripts/build-image.sh` builds it with podman (its base made
from Debian's packages), then its roles start from it in production mode, read-only root, the manifests' user,
against this machine's PostgreSQL and Redis: the prepare Job migrates and creates the admin, the web serves the
API, the screens (their templates and static files come in the wheel) and plain HTTP to the Service's name."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.integration.conftest import free_port, service_get

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "exchange_image_test"
ENVIRONMENT = {
    "TRADING_ENV": "production", "SECRET_KEY": "image-test-" + "k" * 50, "ALLOWED_HOSTS": "trading-service,127.0.0.1",
    "METRICS_TOKEN": "scraper-token", "EXCHANGE_ADMIN_PASSWORD": "not-the-default-password",
    "DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_NAME": DATABASE, "DB_USER": "postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/14", "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto", "WEB_PROCESSES": "1",
}
CONTAINERS_CONF = {"CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None and os.geteuid() != 0:
        pytest.skip("podman is not installed, and only root installs it (scripts/build-image.sh)")
    if not (reachable(5432) and reachable(6379)):
        pytest.fail("the image's roles run against PostgreSQL and Redis on 127.0.0.1:5432 and :6379")
    built = subprocess.run([str(ROOT / "scripts" / "build-image.sh")], cwd=ROOT, capture_output=True, text=True,
                           timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    return built.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def database():
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c"]
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"], check=True, capture_output=True)
    subprocess.run([*psql, f"CREATE DATABASE {DATABASE}"], check=True, capture_output=True)
    yield DATABASE
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"], capture_output=True)


def podman(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **CONTAINERS_CONF})


def role(image: str, *command: str, detach: bool = False, **env: str) -> subprocess.CompletedProcess:
    """A role's container as the manifests run it: read-only root with a writable /tmp, uid 10001, production."""
    options = [f"--env={key}={value}" for key, value in {**ENVIRONMENT, **env}.items()]
    return podman("run", "-d" if detach else "--rm", "--network=host", "--read-only", "--tmpfs=/tmp",
                  "--user=10001:10001", *options, image, "python", "manage.py", *command)


def staff_session(port: int) -> str:
    """The admin's session, logged in through the admin's form as a browser behind the Ingress would."""
    secure = {"Host": f"trading-service:{port}", "X-Forwarded-Proto": "https"}
    status, headers, page = service_get(port, "/backoffice/login/", **{"X-Forwarded-Proto": "https"})
    csrf_cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"])[1]
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": form_token, "username": "admin",
                                   "password": ENVIRONMENT["EXCHANGE_ADMIN_PASSWORD"], "next": "/control/"})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/backoffice/login/?next=/control/", body=body, headers={
        **secure, "Cookie": f"csrftoken={csrf_cookie}", "Content-Type": "application/x-www-form-urlencoded",
        "Referer": f"https://trading-service:{port}/backoffice/login/"})
    answer = connection.getresponse()
    cookies = answer.getheader("Set-Cookie") or ""
    connection.close()
    assert answer.status == 302, (answer.status, cookies)
    return re.search(r"sessionid=([^;]+)", cookies)[1]


def test_the_images_roles_prepare_and_serve_the_api_and_the_screens(image, database):
    checked = role(image, "check", "--deploy", "--fail-level", "WARNING")
    prepared = role(image, "prepare_exchange", "--demo-pairs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert prepared.returncode == 0 and "created staff superuser 'admin'" in prepared.stdout, prepared.stderr[-2000:]

    port = free_port()
    started = role(image, "serve_web", detach=True, PORT=str(port), WEBSOCKET_URL="wss://trading.example.com")
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        deadline = time.monotonic() + 60
        while not reachable(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        live = service_get(port, "/live")
        pairs = service_get(port, "/api/pairs/")
        market = service_get(port, "/market/BTCUSDT/")
        uplot = service_get(port, "/static/vendor/uplot-1.6.32/uPlot.iife.min.js")
        session = staff_session(port)
        control = service_get(port, "/control/", Cookie=f"sessionid={session}", **{"X-Forwarded-Proto": "https"})
    finally:
        logs = podman("logs", container).stderr[-3000:]
        podman("rm", "-f", container)

    assert live[0] == 200, logs
    assert pairs[0] == 200 and len(json.loads(pairs[2])) == 4        # plain HTTP, the Service's name
    assert market[0] == 200 and "BTCUSDT" in market[2] and 'data-websocket="wss://trading.example.com/ws/market' \
        in market[2], logs
    assert uplot[0] == 200 and uplot[1]["content-type"].startswith("text/javascript")
    assert control[0] == 200 and "<title>Migration control" in control[2], logs
