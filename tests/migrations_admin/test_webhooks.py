"""The webhooks against a real HTTP receiver: a rollback, an emergency stop and a finished migration are posted
as Slack-compatible JSON once committed, retried with backoff when the receiver fails, audited when delivered or
given up, and a receiver that never answers does not hold up or undo the action."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exchange.celery import app
from exchange.models import AuditLog
from migrations_admin.models import MigrationPlan

pytestmark = pytest.mark.django_db(transaction=True)      # the webhooks leave once the action has committed


class Receiver:
    """A webhook receiver on a local port that fails its first `failures` requests with 500."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append(body)
                failing = len(receiver.received) <= receiver.failures
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T000/B000/secret"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver(settings):
    receiver = Receiver()
    settings.ALERT_WEBHOOK_URLS = [receiver.url]
    settings.WEBHOOK_MAX_RETRIES = 3
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True        # the delivery runs here; its retries too, at once
    yield receiver
    app.conf.task_always_eager = eager
    receiver.close()


def test_a_rollback_is_posted_as_slack_compatible_json_and_audited(staff_api, btc, receiver, caplog):
    staff_api.post("/admin/migration/start", {"pair": "BTCUSDT", "target_percentage": 50}, format="json")
    staff_api.post("/admin/migration/rollback", {"pair": "BTCUSDT", "reason": "p99 looks odd"}, format="json")

    (message,) = receiver.received
    assert message["text"] == "Rollback of BTCUSDT from 10% to the legacy book: p99 looks odd"
    assert (message["event"], message["details"]["actor"]) == ("rollback", "operator:ops")
    delivered = AuditLog.objects.get(action="webhook_delivered")
    assert delivered.target == f"webhook:127.0.0.1:{receiver.server.server_port}"     # never the secret path
    assert delivered.details == {"alert": "rollback", "attempts": 1, "status": 200}
    assert "secret" not in caplog.text                          # nor do Celery's logs of the task name it


def test_a_failing_receiver_is_retried_until_it_takes_the_message(staff_api, pairs, receiver):
    receiver.failures = 2
    staff_api.post("/admin/migration/start", {"pair": "ETHUSDT", "target_percentage": 50}, format="json")
    staff_api.post("/admin/migration/emergency-stop", {}, format="json")

    assert [message["event"] for message in receiver.received] == ["emergency_stop"] * 3
    assert receiver.received[0]["text"] == "Emergency stop by operator:ops: ETHUSDT back to the legacy book"
    assert AuditLog.objects.get(action="webhook_delivered").details["attempts"] == 3


def test_a_receiver_that_always_fails_is_given_up_and_the_action_stands(staff_api, btc, receiver):
    receiver.failures = 100
    staff_api.post("/admin/migration/start", {"pair": "BTCUSDT", "target_percentage": 100}, format="json")
    staff_api.post("/admin/migration/percentage", {"pair": "BTCUSDT", "percentage": 100}, format="json")

    response = staff_api.post("/admin/migration/finalize", {"pair": "BTCUSDT"}, format="json")

    assert response.status_code == 200
    assert MigrationPlan.objects.get().state == "completed"
    assert len(receiver.received) == 4                          # the first try and WEBHOOK_MAX_RETRIES more
    assert receiver.received[0]["event"] == "migration_finished"
    failed = AuditLog.objects.get(action="webhook_failed")
    assert (failed.details["attempts"], failed.details["status"]) == (4, 500)
