"""Routing: prefix rules first, then sniffing; unknown content is a permanent, explained error."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from processing import sample
from s3worker.errors import UnknownFormatError
from s3worker.processors.base import read_sample
from s3worker.processors.registry import Registry, parse_routes

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
