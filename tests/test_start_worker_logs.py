"""lambda/starter/logs.py: one JSON object per log line, with its structured fields, and the
entry point's set-up that prints each line once (JSON lines and the bare EMF lines)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest
from lambdakit import starter

logs = starter("logs")


def record(message: str, level: int = logging.WARNING, **fields: object) -> logging.LogRecord:
    rec = logging.LogRecord("s3worker.start_worker", level, "", 0, message, (), None)
    if fields:
        rec.fields = fields
    return rec


def test_log_lines_are_json_with_their_fields() -> None:
    line = json.loads(logs.JsonFormatter().format(record("decision", deferred=1, stopping=["i-x"])))

    assert line["event"] == "decision"
    assert line["level"] == "warning"
    assert line["logger"] == "s3worker.start_worker"
    assert line["deferred"] == 1
    assert line["stopping"] == ["i-x"]
    assert "exception" not in line


def test_an_exception_and_values_json_cannot_encode_are_kept_as_text() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        rec = record("custom_resource_failed", logging.ERROR, when=object())
        rec.exc_info = sys.exc_info()

    line = json.loads(logs.JsonFormatter().format(rec))

    assert "RuntimeError: boom" in line["exception"]
    assert line["when"].startswith("<object object")


@pytest.fixture
def clean_loggers() -> Iterator[None]:
    """The two loggers without handlers before and after the test."""

    def reset() -> None:
        for logger in (logs.log, logs.metrics_log):
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)

    reset()
    yield
    reset()


def test_configured_twice_each_line_is_printed_once(
    clean_loggers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # A warm container's module is imported once, but the set-up must not stack handlers
    logs.configure_logging("info")
    logs.configure_logging("INFO")

    logs.emit(logging.INFO, "idle", visible=0)
    logs.metrics_log.info('{"_aws": {}}')

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["event"] == "idle"
    assert json.loads(lines[0])["visible"] == 0
    assert lines[1] == '{"_aws": {}}'  # the EMF document bare, not wrapped in a log object
    assert logs.log.propagate is False  # the runtime's root handler would print it twice


def test_the_level_filters_the_log_lines_not_the_metrics(
    clean_loggers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure_logging("warning")

    logs.emit(logging.INFO, "idle")
    logs.emit(logging.WARNING, "decision", deferred=1)
    logs.metrics_log.info("{}")

    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line).get("event") for line in lines] == ["decision", None]
