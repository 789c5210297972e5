"""logs.py: one structlog set-up, JSON lines (or console text) on stdout."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from s3worker import logs


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers  # configure() may have added one on the captured stdout
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_json_lines_carry_level_time_event_and_bound_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")
    structlog.contextvars.bind_contextvars(key="in/a.csv")
    structlog.get_logger("t").info("job", outcome="processed", size=12)
    (line,) = lines(capsys)
    doc = json.loads(line)
    assert doc["event"] == "job"
    assert doc["level"] == "info"
    assert (doc["key"], doc["outcome"], doc["size"]) == ("in/a.csv", "processed", 12)
    assert doc["timestamp"].endswith("Z")  # ISO time in UTC


def test_below_the_level_nothing_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json", level=logging.WARNING)
    log = structlog.get_logger("t")
    log.info("quiet")
    log.warning("loud")
    assert [json.loads(line)["event"] for line in lines(capsys)] == ["loud"]


def test_an_exception_is_rendered_into_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json")
    try:
        raise ValueError("bad row")
    except ValueError:
        structlog.get_logger("t").error("failed", exc_info=True)
    (line,) = lines(capsys)
    assert "ValueError: bad row" in json.loads(line)["exception"]


def test_console_format_is_text_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("console")
    structlog.get_logger("t").info("job", outcome="processed")
    (line,) = lines(capsys)
    assert "job" in line
    assert "outcome=processed" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
