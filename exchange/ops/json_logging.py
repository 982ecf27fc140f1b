"""Log records as one JSON object per line, for ELK and for the deployment guide's greps.

A line: `{"@timestamp", "level", "service", "component", "logger", "event", "message", "request_id"?, ...extra}`.
`@timestamp` is what Elasticsearch and Kibana sort by; `level` is upper case (`INFO`, `WARNING`, `ERROR`, and
`FATAL` for Python's CRITICAL) so `grep -E "(ERROR|FATAL)"` finds the errors; `service` names the system
(`adaptive-trading` unless SERVICE_NAME says otherwise) and `component` the process (`web`, `websockets`,
`matching-worker`, `celery-worker`, `celery-beat`, from LOG_COMPONENT); `request_id` is the HTTP request's
(`exchange/ops/request_id.py`) for every line logged while serving it.
"""

import json
import logging
from datetime import UTC, datetime

from exchange.ops.request_id import current_request_id

# Attributes every LogRecord has; anything else was passed with `extra=` and goes into the line.
STANDARD_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
LEVEL_NAMES = {"CRITICAL": "FATAL"}


class JsonLineFormatter(logging.Formatter):
    """`event` is a stable machine-readable name given with `extra={"event": "order_placed"}`; it defaults to the
    logger name so every line can be filtered by it."""

    def __init__(self, service: str, component: str = "") -> None:
        super().__init__()
        self.service = service
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "@timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": LEVEL_NAMES.get(record.levelname, record.levelname),
            "service": self.service,
            "component": self.component,
            "logger": record.name,
            "event": getattr(record, "event", record.name),
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            line["request_id"] = request_id
        line.update(
            (key, value) for key, value in vars(record).items() if key not in STANDARD_RECORD_ATTRIBUTES
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
