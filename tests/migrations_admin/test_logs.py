"""The logs an operator greps and queries, as the deployment guide does it: JSON lines with `@timestamp`, an
upper-case level, `service` adaptive-trading and the process's `component`; every migration action logged with
the word "migration", its pair, plan and actor; each HTTP request's id on its lines."""
import io
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from exchange.ops.json_logging import JsonLineFormatter

pytestmark = pytest.mark.django_db(transaction=True)     # migration actions are logged once committed
START_BTC = {"pair": "BTCUSDT", "target_percentage": 50}


@pytest.fixture
def log_file():
    """What the process logs, as its log file would hold it (the project's formatter, from the settings)."""
    formatter = settings.LOGGING["formatters"]["json"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter(formatter["service"], formatter["component"]))
    root = logging.getLogger()
    root.addHandler(handler)
    level, root.level = root.level, logging.INFO
    yield stream
    root.removeHandler(handler)
    root.level = level


def grep(pattern: str, text: str) -> list[str]:
    """`grep -E pattern`: the lines it prints."""
    return [line for line in text.splitlines() if re.search(pattern, line)]


def kibana_query(lines: list[str], now: datetime) -> list[dict]:
    """The guide's ELK query: `service` matches adaptive-trading and `@timestamp` is within the last hour."""
    documents = [json.loads(line) for line in lines]
    return [doc for doc in documents if doc.get("service") == "adaptive-trading"
            and datetime.fromisoformat(doc["@timestamp"]) >= now - timedelta(hours=1)]


def test_the_guides_greps_and_query_find_the_migration_events_and_the_errors(staff_api, btc, log_file):
    assert staff_api.post("/admin/migration/start", START_BTC, format="json").status_code in (200, 201)
    staff_api.post("/admin/migration/rollback", {"pair": "BTCUSDT", "reason": "p99 looks odd"}, format="json")
    staff_api.post("/admin/migration/emergency-stop", {}, format="json")
    logging.getLogger("matching_worker").critical("too many entries failed on their own",
                                                  extra={"event": "quarantine_halted", "shard": 0})
    text = log_file.getvalue()

    migration = [json.loads(line) for line in grep("migration", text)]
    assert {line["event"] for line in migration} >= {"migration_start", "migration_rollback"}
    rollback = next(line for line in migration if line["event"] == "migration_rollback")
    assert rollback["level"] == "WARNING" and rollback["pair"] == "BTCUSDT" and rollback["plan"]
    assert rollback["message"].startswith("migration rollback: BTCUSDT") and "p99 looks odd" in rollback["message"]
    assert rollback["actor"] == "operator:ops" and rollback["request_id"]
    assert [json.loads(line)["event"] for line in grep("(ERROR|FATAL)", text)] == ["quarantine_halted"]
    found = kibana_query(text.splitlines(), datetime.now(UTC))
    assert len(found) == len(text.splitlines()) and {doc["component"] for doc in found} == {"web"}


def test_the_performance_report_is_what_the_guides_latency_grep_finds():
    from matching_worker.serve import ShardServer
    from matching_worker.worker import MatchingWorker

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter("adaptive-trading", "matching-worker"))
    logger = logging.getLogger("matching_worker")
    logger.addHandler(handler)
    try:
        server = ShardServer(MatchingWorker(0))
        server.report_every = 0
        server._report_if_due()
    finally:
        logger.removeHandler(handler)
        server.worker.close()

    (line,) = grep("latency|throughput", stream.getvalue())
    assert json.loads(line)["event"] == "performance_report" and json.loads(line)["component"] == "matching-worker"
    # One shape per field across every line, as Elasticsearch maps it: `pairs` is the list of symbols elsewhere.
    assert "pairs" not in json.loads(line) and isinstance(json.loads(line)["pair_figures"], dict)


def test_a_request_carries_its_id_to_the_response_and_to_its_log_lines(staff_api, btc, log_file):
    given = staff_api.post("/admin/migration/start", START_BTC, format="json", HTTP_X_REQUEST_ID="trace-42")
    invented = staff_api.get("/api/pairs/", HTTP_X_REQUEST_ID="not a sensible id\u00e9")

    assert given["X-Request-ID"] == "trace-42"
    assert re.fullmatch(r"[0-9a-f]{32}", invented["X-Request-ID"])
    start = next(json.loads(line) for line in log_file.getvalue().splitlines() if "migration_start" in line)
    assert start["request_id"] == "trace-42"
