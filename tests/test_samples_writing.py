"""samples/writing.py: a generator's blocks written as CSV, JSON, JSON lines or CLF, gzip or
not, with the broken lines appended and the truth counted. Uses a tiny generator of its own;
the kinds' generators have their own files (test_samples_<kind>.py)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from s3worker.samples import writing
from s3worker.samples.writing import Truth, write_sample


def assert_reproducible(tmp_path: Path, kind: str, fmt: str = "csv") -> None:
    """The same seed writes the same bytes, another seed other bytes; the truth is filled."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    truth = write_sample(kind, 2_000, a, fmt=fmt, seed=3)
    write_sample(kind, 2_000, b, fmt=fmt, seed=3)
    write_sample(kind, 2_000, c, fmt=fmt, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
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
    with pytest.raises(ValueError, match="fmt must be one of csv, json, jsonl, clf"):
        write_sample("sales", 10, tmp_path / "x", fmt="xml")
    assert not (tmp_path / "x").exists()


def two_blocks(rows: int, seed: int, truth: Truth) -> Iterator[pa.Table]:
    yield pa.table({"a": ["1", "2"], "b": ["x", None]})
    yield pa.table({"a": ["3"], "b": ["y, z"]})


def write(out: Path, fmt: str, broken: list[str], blocks: object = None) -> Truth:
    truth = Truth()
    with pa.output_stream(str(out)) as sink:
        writing._write_blocks(blocks or two_blocks(0, 0, truth), sink, fmt, broken, truth)
    return truth


def test_csv_has_one_header_quotes_the_strings_then_the_broken_lines(tmp_path: Path) -> None:
    truth = write(tmp_path / "f.csv", "csv", ["x,y,z,w", "junk"])
    assert (tmp_path / "f.csv").read_text().splitlines() == [
        '"a","b"', '"1","x"', '"2",', '"3","y, z"', "x,y,z,w", "junk",
    ]  # fmt: skip
    assert (truth.rows, truth.broken_lines) == (3, 2)


def test_json_is_one_array_without_nulls_and_never_carries_broken_lines(tmp_path: Path) -> None:
    truth = write(tmp_path / "f.json", "json", ["{broken"])
    doc = json.loads((tmp_path / "f.json").read_text())
    assert doc == [{"a": "1", "b": "x"}, {"a": "2"}, {"a": "3", "b": "y, z"}]
    assert (truth.rows, truth.broken_lines) == (3, 0)  # a broken line would spoil the array


def test_json_lines_take_the_broken_lines_at_the_end(tmp_path: Path) -> None:
    truth = write(tmp_path / "f.jsonl", "jsonl", ["{broken"])
    lines = (tmp_path / "f.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines[:3]] == [
        {"a": "1", "b": "x"}, {"a": "2"}, {"a": "3", "b": "y, z"},
    ]  # fmt: skip
    assert lines[3:] == ["{broken"]
    assert truth.broken_lines == 1


def test_no_blocks_is_an_empty_array_or_an_empty_file(tmp_path: Path) -> None:
    write(tmp_path / "e.json", "json", [], blocks=iter([]))
    write(tmp_path / "e.csv", "csv", [], blocks=iter([]))
    assert json.loads((tmp_path / "e.json").read_text()) == []
    assert (tmp_path / "e.csv").read_text() == ""


def test_gzip_writes_a_gzip_stream_of_the_same_text(tmp_path: Path) -> None:
    plain, packed = tmp_path / "p.csv", tmp_path / "p.csv.gz"
    a = write_sample("sales", 300, plain, seed=1)
    b = write_sample("sales", 300, packed, gzip=True, seed=1)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert a == b


def test_the_truth_serialises_rows_broken_lines_and_what_was_planted() -> None:
    truth = Truth(planted={"spike": [("dev-1", "temperature")], "n": [3]}, broken_lines=2, rows=9)
    assert json.loads(truth.to_json()) == {
        "rows": 9, "broken_lines": 2, "planted": {"spike": [["dev-1", "temperature"]], "n": [3]},
    }  # fmt: skip
    assert json.loads(Truth(planted={"at": [Path("x")]}).to_json())["planted"] == {"at": ["x"]}
