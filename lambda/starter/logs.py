"""One JSON object per log line on stdout (Lambda sends stdout to CloudWatch Logs)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

log = logging.getLogger("s3worker.start_worker")
# The EMF lines: each log event must be the bare JSON document, so a logger of their own.
metrics_log = logging.getLogger("s3worker.start_worker_metrics")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; structured fields come from `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    """At the entry point only: JSON lines, and the EMF lines as they are, on stdout."""
    for logger, formatter in ((log, JsonFormatter()), (metrics_log, logging.Formatter())):
        if not any(type(h.formatter) is type(formatter) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(formatter)
            logger.addHandler(handler)
            logger.propagate = False  # the runtime's root handler would print every line twice
    log.setLevel(level.upper())
    metrics_log.setLevel(logging.INFO)


def emit(level: int, event: str, **fields: Any) -> None:
    log.log(level, event, extra={"fields": fields})
