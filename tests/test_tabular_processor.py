"""The tabular base: sniffing only table formats, the pandas side run by name, thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from s3worker.processors.base import JobContext, ProcessResult, Sample
from s3worker.processors.options import Options
from s3worker.processors.sales.schema import SCHEMA
from s3worker.processors.tabular.processor import TabularProcessor

CSV = b"date,store,product,quantity,revenue\n2024-02-01,L1,cafe,2,11.0\n2024-02-02,L2,pao,1,3.5\n"
JSONL = b'{"date": "2024-02-01", "product": "cafe", "revenue": 11.0}\n'
CLF = b'127.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 2326\n' * 3
CALLS: list[tuple[Path, Path, JobContext]] = []


def run(src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    """The pandas side this test module stands in for."""
    CALLS.append((src, out_dir, ctx))
    return ProcessResult(summary={"ran": src.name}, rows={"x.parquet": 1})


class Tables(TabularProcessor):
    name = "tables"
    schema = SCHEMA
    thresholds: ClassVar[dict[str, float]] = {"top_n": 50.0}
    analysis = __name__


def _sample(head: bytes) -> Sample:
    return Sample(key="in/file", head=head, compressed=False)


def test_sniff_scores_tables_by_their_schema_and_nothing_else() -> None:
    p = Tables()
    assert p.sniff(_sample(CSV)) == pytest.approx(SCHEMA.score(*_columns_rows(CSV)))
    assert p.sniff(_sample(CSV)) > 0.5
    assert p.sniff(_sample(JSONL)) > 0
    # a log file is not a table, whatever its words
    assert p.sniff(_sample(CLF)) == 0.0


class _Lenient:
    """A schema that would take anything it is shown."""

    def score(self, columns: list[str], rows: list[list[str | None]]) -> float:
        return 0.9


def test_a_log_or_text_sample_is_not_shown_to_the_schema() -> None:
    class Anything(Tables):
        schema = _Lenient()  # type: ignore[assignment]

    assert Anything().sniff(_sample(CSV)) == 0.9
    assert Anything().sniff(_sample(CLF)) == 0.0
    assert Anything().sniff(_sample(b"just some words\nand more\n")) == 0.0


def _columns_rows(head: bytes) -> tuple[list[str], list[list[str | None]]]:
    lines = head.decode().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def test_process_runs_the_named_module(tmp_path: Path) -> None:
    ctx = JobContext(key="in/file", size=10)
    result = Tables().process(tmp_path / "file.csv", tmp_path / "out", ctx)
    assert result == ProcessResult(summary={"ran": "file.csv"}, rows={"x.parquet": 1})
    assert CALLS[-1] == (tmp_path / "file.csv", tmp_path / "out", ctx)


def test_a_threshold_is_the_routes_option_else_the_default() -> None:
    default = JobContext(key="k", size=1)
    routed = JobContext(key="k", size=1, options=Options(thresholds={"top_n": 5}))
    assert Tables.threshold(default, "top_n") == 50.0
    assert Tables.threshold(routed, "top_n") == 5.0
    with pytest.raises(KeyError):
        Tables.threshold(default, "unknown")
