"""scripts/monitor-deployment.sh against a local instance: PASS while it serves, FAIL naming the criterion when
a shard's worker is gone."""
import os
import subprocess

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from tests.integration.conftest import ROOT
from tests.integration.order_stream import prepare_market

pytestmark = pytest.mark.django_db(transaction=True)


def monitor(live_server, token: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts" / "monitor-deployment.sh"), "--environment=local", "--duration=2s",
                           "--interval=1s"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EXCHANGE_URL": live_server.url, "EXCHANGE_TOKEN": token})


def test_pass_while_it_serves_and_fail_without_a_worker(live_server, worker):
    prepare_market()
    token = Token.objects.create(user=User.objects.create_user("ops", is_staff=True)).key
    worker.start()
    worker.wait_ready()

    serving = monitor(live_server, token)
    assert worker.stop() == 0
    stopped = monitor(live_server, token)

    assert serving.returncode == 0, serving.stdout + serving.stderr
    assert "health=ok" in serving.stdout and serving.stdout.splitlines()[-1].startswith("PASS")
    assert stopped.returncode == 1
    assert "health=degraded" in stopped.stdout and "FAIL: health degraded" in stopped.stderr
