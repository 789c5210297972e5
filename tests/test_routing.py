"""Routing: prefix rules first, then sniffing; unknown content is a permanent, explained error."""

from __future__ import annotations

import asyncio
import io
import json
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from processing import sample
from procs import Pipeline
from s3worker.config import Settings
from s3worker.errors import UnknownFormatError
from s3worker.processors.base import read_sample
from s3worker.processors.registry import Registry, parse_routes
from s3worker.retry import RetryPolicy
from s3worker.worker import ExitReason, serve
from tenacity import wait_none

CASES = [
    *[("appointments", fmt, fmt == "json") for fmt in ("csv", "json", "jsonl")],
    *[("sensors", fmt, fmt == "csv") for fmt in ("csv", "json", "jsonl")],
    *[("sales", fmt, fmt == "jsonl") for fmt in ("csv", "json", "jsonl")],
    *[
        ("applogs", fmt, gz)
        for fmt, gz in (("clf", False), ("clf", True), ("jsonl", False), ("csv", False))
    ],
]


@pytest.mark.parametrize(("kind", "fmt", "gzip"), CASES)
def test_content_sniffing_finds_the_processor(
    tmp_path: Path, kind: str, fmt: str, gzip: bool
) -> None:
    src, _ = sample(tmp_path, kind, 300, fmt=fmt, gzip=gzip)
    # the key says nothing: routing must come from the content alone
    assert Registry().route(read_sample(src, key="upload/file.bin")).name == kind


def test_longest_prefix_rule_wins_over_sniffing(tmp_path: Path) -> None:
    src, _ = sample(tmp_path, "sensors", 300)
    routes = parse_routes("in/=sales, in/plant/=appointments")
    assert Registry().route(read_sample(src, key="in/plant/x.csv"), routes).name == "appointments"
    assert Registry().route(read_sample(src, key="in/x.csv"), routes).name == "sales"
    assert Registry().route(read_sample(src, key="other/x.csv"), routes).name == "sensors"


def test_unrecognised_content_says_what_was_seen(tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("name,colour\nowl,brown\n")
    with pytest.raises(UnknownFormatError) as err:
        Registry().route(read_sample(src, key="misc/notes.txt"))
    message = str(err.value)
    assert "misc/notes.txt" in message
    assert "name,colour" in message
    assert "best scores" in message


def test_processor_modules_load_without_pandas() -> None:
    # the daemon's main process imports every processor to route: it must stay light
    code = (
        "import sys; from s3worker.processors.registry import registry; registry.names(); "
        "print(sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_processors_survive_pickling_for_the_process_pool() -> None:
    registry = Registry()
    for name in ("appointments", "sensors", "sales", "applogs"):
        assert (
            type(pickle.loads(pickle.dumps(registry.get(name)))).__name__
            == type(registry.get(name)).__name__
        )


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


def test_routing_from_threads_never_sees_a_half_loaded_registry(tmp_path: Path) -> None:
    # Given a fresh registry and a log file, routed from many threads at once (the daemon
    # routes off the event loop)
    src, _ = sample(tmp_path, "applogs", 300, fmt="clf")
    log_sample = read_sample(src, key="logs/access.log")
    fresh = Registry()
    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: fresh.route(log_sample).name, range(32)))
    # Then every one of them found the log processor
    assert set(names) == {"applogs"}
