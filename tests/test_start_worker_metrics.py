"""lambda/starter/metrics.py (pure): the decision metrics as CloudWatch Embedded Metric Format
documents, one per `emit`, and the names it refuses."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from lambdakit import FakeClock, starter

metrics = starter("metrics")


def sink(**kwargs: Any) -> tuple[Any, list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []
    out = metrics.MetricsSink("S3worker/prod", write=lambda line: lines.append(json.loads(line)))
    for name, value in kwargs.items():
        setattr(out, name, value)
    return out, lines


def test_one_document_names_each_metric_with_its_unit_in_the_namespace() -> None:
    out, lines = sink(clock=FakeClock(now=1700000000.1234))

    out.emit({"WorkersStarted": 1, "Backlog": 12})

    (doc,) = lines
    assert doc == {
        "_aws": {
            "Timestamp": 1700000000123,  # milliseconds, as EMF wants them
            "CloudWatchMetrics": [
                {
                    "Namespace": "S3worker/prod",
                    "Dimensions": [[]],  # the namespace names the stack already
                    "Metrics": [
                        {"Name": "WorkersStarted", "Unit": "Count"},
                        {"Name": "Backlog", "Unit": "Count"},
                    ],
                }
            ],
        },
        "WorkersStarted": 1,
        "Backlog": 12,
    }


def test_extra_fields_are_plain_searchable_fields_not_metrics() -> None:
    out, lines = sink(extra={"function": "start"})

    out.emit({"PoolActive": 2})

    (doc,) = lines
    assert doc["function"] == "start"
    assert [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["PoolActive"]


def test_an_unknown_metric_name_is_refused_and_nothing_written() -> None:
    out, lines = sink()

    with pytest.raises(ValueError, match=r"unknown metric names \['Workers'\]"):
        out.emit({"Workers": 1, "Backlog": 0})
    assert lines == []


def test_the_default_writer_is_the_metrics_logger_one_bare_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="s3worker.start_worker_metrics")

    metrics.MetricsSink("S3worker/prod").emit({"SpotFallbacks": 0})

    (record,) = [r for r in caplog.records if r.name == "s3worker.start_worker_metrics"]
    assert json.loads(record.getMessage())["SpotFallbacks"] == 0
