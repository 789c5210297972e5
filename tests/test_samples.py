"""The sample generator: every kind in every format, reproducible, with its planted truth."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from s3worker.samples import KINDS, write_sample


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_file(tmp_path: Path, kind: str) -> None:
    fmt = "clf" if kind == "applogs" else "csv"
    a, b = tmp_path / "a", tmp_path / "b"
    truth = write_sample(kind, 2_000, a, fmt=fmt, seed=3)
    write_sample(kind, 2_000, b, fmt=fmt, seed=3)
    assert a.read_bytes() == b.read_bytes()
    assert truth.rows > 1_500
    assert truth.planted


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_formats_parse(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"s.{fmt}.gz"
    write_sample("sales", 500, out, fmt=fmt, gzip=True)
    text = gzip.decompress(out.read_bytes()).decode()
    if fmt == "json":
        assert len(json.loads(text)) > 400
    else:
        assert json.loads(text.splitlines()[0])["product"].startswith("SKU-")


def test_bad_arguments_name_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        write_sample("weather", 10, tmp_path / "x")
    with pytest.raises(ValueError, match="fmt"):
        write_sample("sales", 10, tmp_path / "x", fmt="clf")
