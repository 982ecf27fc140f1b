"""The guide's scripts against a live server: canary-rollout steps a pair through the operator API and
monitor-migration prints its status; bad flags are clear errors; a redirect, an error or an empty answer is never
read as an answer."""

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from exchange.trading.pairs import ensure_demo_pairs
from migrations_admin.models import MigrationPlan

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def operator_env(live_server, transactional_db) -> dict[str, str]:
    ensure_demo_pairs()
    token = Token.objects.create(user=User.objects.create_user("ops", is_staff=True))
    return {"EXCHANGE_URL": live_server.url, "EXCHANGE_TOKEN": token.key}


@pytest.mark.parametrize(("name", "flag", "message"), [
    ("canary-rollout.sh", "--bogus", "unknown flag --bogus"),
    ("canary-rollout.sh", "--interval=10x", "--interval=10x is not a duration like 30s, 10m or 1h"),
    ("canary-rollout.sh", "--start=150", "--start=150 is not a percentage from 0 to 100"),
    ("monitor-migration.sh", "--duration=soon", "--duration=soon is not a duration"),
])
def test_bad_flags_are_clear_errors(name, flag, message):
    result = script(name, flag)

    assert result.returncode == 2
    assert message in result.stderr


def test_canary_rollout_steps_to_the_target(operator_env):
    result = script("canary-rollout.sh", "--pair=ETHUSDT", "--start=10", "--target=30", "--step=10",
                    "--interval=1s", env=operator_env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ETHUSDT: started at 10%", "ETHUSDT: 20%", "ETHUSDT: 30%",
                                          "ETHUSDT: rollout done at 30%"]
    plan = MigrationPlan.objects.get()
    assert (plan.state, plan.current_percentage) == ("running", 30)
    assert list(plan.events.order_by("id").values_list("kind", "to_percentage")) == [
        ("start", 10), ("set_percentage", 10), ("set_percentage", 20), ("set_percentage", 30)]


def test_canary_rollout_reports_an_api_refusal(operator_env):
    result = script("canary-rollout.sh", "--pair=NOPE", "--interval=1s", env=operator_env)

    assert result.returncode != 0
    assert "HTTP 400" in result.stderr and "unknown_pair" in result.stderr


def test_monitor_prints_status_until_the_duration_ends(operator_env):
    result = script("monitor-migration.sh", "--pair=BTCUSDT", "--duration=1s", "--interval=1s", env=operator_env)

    assert result.returncode == 0, result.stderr
    assert "BTCUSDT  none  legacy_only  0%" in result.stdout


def test_scripts_need_a_staff_token(operator_env):
    result = script("monitor-migration.sh", "--duration=1s", env={**operator_env, "EXCHANGE_TOKEN": ""})

    assert result.returncode == 1
    assert "HTTP 401" in result.stderr


class Redirecting(BaseHTTPRequestHandler):
    """A service that answers every request with a redirect and no body: what production answered plain HTTP."""

    def do_GET(self):  # noqa: N802 - the handler's name is http.server's
        self.send_response(301)
        self.send_header("Location", "https://example.invalid/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def redirecting_service():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize("argv", [
    ["monitor-deployment.sh", "--environment=local", "--duration=1s", "--interval=1s"],
    ["monitor-migration.sh", "--pair=BTCUSDT", "--duration=1s", "--interval=1s"],
    ["canary-rollout.sh", "--pair=BTCUSDT", "--start=10", "--target=20", "--step=10", "--interval=1s"],
], ids=["monitor-deployment", "monitor-migration", "canary-rollout"])
def test_a_redirect_is_a_failure_that_names_the_url_and_the_status(redirecting_service, argv):
    result = subprocess.run([str(SCRIPTS / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "EXCHANGE_URL": redirecting_service, "EXCHANGE_TOKEN": "t"})

    assert result.returncode != 0, result.stdout
    assert f"{redirecting_service}/" in result.stderr and "HTTP 301" in result.stderr, result.stderr
    assert "PASS" not in result.stdout
