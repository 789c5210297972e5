"""`s3worker sample`, `process` and `show` on local files, as a person runs them."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from s3worker import exits


def s3worker(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3worker", *argv],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("samples")
    made = {"sales": root / "sales.csv", "sensors": root / "readings.csv"}
    for kind, path in made.items():
        assert s3worker("sample", kind, "--rows", "2000", "--out", str(path)).returncode == 0
    return made


def test_sample_says_how_many_lines_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    result = s3worker("sample", "sales", "--rows", "1000", "--out", str(out))
    assert result.returncode == 0
    # Then the message gives the exact counts the file holds
    written, _, rest = result.stdout.partition(" rows + ")
    rows = int(written.removeprefix("wrote ").replace(",", ""))
    malformed = int(rest.split()[0])
    assert 1000 <= rows < 1100
    assert rest.endswith(f"malformed lines of sales to {out}\n")
    assert len(out.read_text().splitlines()) == 1 + rows + malformed  # header, rows, planted


def test_sample_help_gives_every_option_a_meaning_and_default() -> None:
    text = " ".join(s3worker("sample", "--help").stdout.split())
    assert "about this many data rows (default: 10000;" in text
    assert "the exact counts are printed" in text
    assert "file format (default: csv" in text
    assert "(default: 7)" in text


def test_process_results_of_different_inputs_never_mix(
    tmp_path: Path, samples: dict[str, Path]
) -> None:
    out = tmp_path / "results"
    assert s3worker("process", str(samples["sales"]), "--out", str(out)).returncode == 0
    assert (out / "top_products.parquet").exists()
    # When another input is processed into the same directory
    result = s3worker("process", str(samples["sensors"]), "--out", str(out))
    # Then only its results are there
    assert result.returncode == 0
    assert '"processor": "sensors"' in result.stdout
    assert (out / "anomalies.parquet").exists()
    assert not (out / "top_products.parquet").exists()


def test_a_failed_process_leaves_no_partial_outputs(
    tmp_path: Path, samples: dict[str, Path]
) -> None:
    out = tmp_path / "results"
    assert s3worker("process", str(samples["sales"]), "--out", str(out)).returncode == 0
    before = sorted(p.name for p in out.iterdir())
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(samples["sensors"].read_bytes())[:3000])  # truncated
    result = s3worker("process", str(broken), "--processor", "sensors", "--out", str(out))
    assert result.returncode == exits.FAILED
    assert "Traceback" not in result.stderr
    assert f"(nothing written to {out}/)" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == before  # the earlier results, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv.gz", "results"]


def test_process_will_not_replace_a_directory_that_is_not_results(
    tmp_path: Path, samples: dict[str, Path]
) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    result = s3worker("process", str(samples["sales"]), "--out", str(precious))
    assert result.returncode == exits.USAGE
    assert "is not empty and holds no earlier results" in result.stderr
    assert (precious / "notes.txt").read_text() == "keep me"


def test_process_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = s3worker("process", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o"))
    assert result.returncode == exits.USAGE
    assert result.stderr == f"s3worker: {tmp_path / 'nope.csv'}: no such file\n"


def test_show_prints_a_result_table_and_its_shape(tmp_path: Path, samples: dict[str, Path]) -> None:
    out = tmp_path / "results"
    assert s3worker("process", str(samples["sales"]), "--out", str(out)).returncode == 0
    table = out / "daily_totals.parquet"
    result = s3worker("show", str(table), "--rows", "3")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "revenue" in lines[0]
    assert len(lines) == 1 + 3 + 2  # header, three rows, a blank line, the shape
    assert lines[-1].startswith(f"{table}: ")
    assert "rows x" in lines[-1]


def test_show_csv_writes_every_row(tmp_path: Path, samples: dict[str, Path]) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "results"
    assert s3worker("process", str(samples["sales"]), "--out", str(out)).returncode == 0
    table = out / "top_products.parquet"
    result = s3worker("show", str(table), "--csv")
    assert result.returncode == 0
    rows = result.stdout.splitlines()
    assert len(rows) == 1 + pq.read_metadata(table).num_rows
    assert rows[0].startswith('"')  # pyarrow quotes the header names


def test_show_prints_json_results_as_they_are(tmp_path: Path, samples: dict[str, Path]) -> None:
    out = tmp_path / "results"
    assert s3worker("process", str(samples["sales"]), "--out", str(out)).returncode == 0
    result = s3worker("show", str(out / "summary.json"))
    assert result.stdout == (out / "summary.json").read_text()


def test_show_refuses_a_binary_file_that_is_not_a_table(tmp_path: Path) -> None:
    blob = tmp_path / "data.gz"
    blob.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    result = s3worker("show", str(blob))
    assert result.returncode == exits.USAGE
    assert result.stderr == f"s3worker: {blob} is neither a Parquet table nor text\n"
    assert result.stdout == ""
