"""Routing in the daemon: a route's processor options reach the processor that reads the file.

How the registry picks a processor (prefix rules, sniffing, unrecognised content) is tested
in test_processors_registry.py.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pandas as pd
from procs import Pipeline
from s3worker.config import Settings
from s3worker.retry import RetryPolicy
from s3worker.worker import ExitReason, serve
from tenacity import wait_none


def test_daemon_reads_a_headerless_file_with_its_routes_options(
    aws: str, name: str, scratch: Path
) -> None:
    # Given a route whose options name the columns of a header-less pt-BR schedule
    pipeline = Pipeline.create(name)
    key = "clinicas/recife/agenda-2024-06.csv"
    pipeline.upload(
        key,
        b"Ana;Dr Silva;03/06/2024;09:00;compareceu\n"
        b"Bruno;Dr Silva;03/06/2024;09:15;faltou\n"
        b"Caio;Dra Lima;04/06/2024;10:00;cancelado\n",
    )
    options = {"header": ["paciente", "medico", "data", "hora", "situacao"], "delimiter": ";"}
    config = {"routes": [{"prefix": "clinicas/", "processor": "appointments", "options": {
        **options, "timezone": "America/Recife"}}]}  # fmt: skip
    env = pipeline.env(scratch, S3WORKER_PROCESSOR_CONFIG=json.dumps(config))
    # When the daemon drains the queue
    reason = asyncio.run(serve(Settings.from_env(env), retry=RetryPolicy(2, wait=wait_none())))
    # Then the file was read with those options: local 09:00 in Recife is 12:00 UTC
    assert reason is ExitReason.IDLE
    manifest = pipeline.manifest(key)
    assert manifest is not None
    assert manifest["processor"]["name"] == "appointments"
    summary = pipeline.output_json(key, "summary.json")
    assert summary is not None
    assert (summary["bookings"], summary["no_shows"], summary["cancellations"]) == (3, 1, 1)
    assert summary["conflicts"] == {"professional": 1, "patient": 0}
    bookings = pd.read_parquet(io.BytesIO(pipeline.output_bytes(key, "appointments.parquet")))
    assert bookings["start"].dt.strftime("%H:%M").tolist() == ["12:00", "12:15", "13:00"]
