"""`s3worker sample` then `s3worker process`: the whole processing path without AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from s3worker.cli import main


def test_sample_then_process_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out, truth = tmp_path / "s.csv.gz", tmp_path / "out", tmp_path / "truth.json"
    assert (
        main(
            [
                "sample",
                "sales",
                "--rows",
                "3000",
                "--out",
                str(src),
                "--gzip",
                "--truth",
                str(truth),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["process", str(src), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["processor"] == "sales"
    assert summary["lines"] > 2_900
    assert json.loads(truth.read_text())["planted"]["malformed"]
    assert (out / "summary.json").exists()
    assert (out / "top_products.parquet").exists()


def test_forced_processor_and_unknown_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "x.txt"
    src.write_text("hello\n")
    assert main(["process", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "no processor recognises" in capsys.readouterr().err
    assert main(["process", str(src), "--processor", "nope"]) == 2
    assert "no processor named 'nope'" in capsys.readouterr().err
