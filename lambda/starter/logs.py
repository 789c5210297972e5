"""One JSON object per log line on stdout (Lambda sends stdout to CloudWatch Logs)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

log = logging.getLogger("s3worker.start_worker")


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
    if not any(isinstance(h.formatter, JsonFormatter) for h in log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.propagate = False  # the runtime's root handler would print every line twice
    log.setLevel(level.upper())


def emit(level: int, event: str, **fields: Any) -> None:
    log.log(level, event, extra={"fields": fields})
