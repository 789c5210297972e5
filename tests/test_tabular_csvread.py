"""The CSV reader: header names made usable, every cell a string, bad rows as rejects."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest
from s3worker.errors import BadDataError
from s3worker.processors.options import Options
from s3worker.processors.tabular import csvread
from s3worker.processors.tabular.csvread import (
    MAX_COLUMNS,
    csv_batches,
    is_gzip,
    rebatch,
)
from s3worker.processors.tabular.rows import Reject, undecodable


def _read(src: Path, encoding: str = "utf-8", options: Options | None = None) -> tuple[
    pa.Table, list[Reject]
]:  # fmt: skip
    batches = list(csv_batches(src, encoding, options or Options()))
    table = pa.Table.from_batches([b for b, _ in batches])
    return table, [r for _, rejects in batches for r in rejects]


def test_every_cell_is_a_string_and_only_empty_cells_are_missing(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("id,amount,note\n1,2.50,NA\n2,,NaN\n")
    table, rejects = _read(src)
    assert table.schema == pa.schema([(n, pa.string()) for n in ("id", "amount", "note")])
    assert table.to_pydict() == {"id": ["1", "2"], "amount": ["2.50", None], "note": ["NA", "NaN"]}
    assert rejects == []


def test_empty_and_repeated_header_names_are_made_unique(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("\ufeffname; ;name;name\na;b;c;d\n")
    table, _ = _read(src)
    assert table.column_names == ["name", "column_1", "name_2", "name_3"]
    assert table.column("name_3").to_pylist() == ["d"]


def test_a_row_with_the_wrong_column_count_is_a_reject(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("a,b\n1,2\n3,4,5\n6,7\n")
    table, rejects = _read(src)
    assert table.column("a").to_pylist() == ["1", "6"]
    assert [(r.record, r.reason, r.raw) for r in rejects] == [
        (None, "expected 2 columns, found 3", "3,4,5")
    ]


def test_a_header_given_in_the_options_reads_the_first_row_as_data(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("x|1\ny|2\n")
    options = Options(header=("letter", "number"), delimiter="|")
    table, _ = _read(src, options=options)
    assert table.to_pydict() == {"letter": ["x", "y"], "number": ["1", "2"]}


def test_the_delimiter_is_sniffed_from_the_header(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("data;loja;valor\n01/02/2024;L1;5,50\n")
    table, _ = _read(src)
    assert table.to_pydict() == {"data": ["01/02/2024"], "loja": ["L1"], "valor": ["5,50"]}


def test_a_header_wider_than_the_limit_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text(",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)) + "\n")
    with pytest.raises(BadDataError, match=f"the header has {MAX_COLUMNS + 1:,} columns"):
        _read(src)


def test_a_first_line_past_the_line_limit_is_not_a_header(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("x" * (8 << 20) + "\n")
    with pytest.raises(BadDataError, match="the first line is longer than 8 MiB"):
        _read(src)


def test_invalid_utf8_rejects_its_row_only(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_bytes(b"name,city\nJo\xe3o,Recife\nAna,Natal\n")
    table, rejects = _read(src)
    assert table.to_pydict() == {"name": ["Ana"], "city": ["Natal"]}
    assert [r.reason for r in rejects] == [undecodable("utf-8")]
    assert rejects[0].raw == "Jo\\xe3o,Recife"


def test_a_cp1252_file_is_transcoded_and_its_accents_kept(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_bytes("nome;cidade\nJoão;São Paulo\nConceição;Niterói\n".encode("cp1252"))
    table, rejects = _read(src, "cp1252")
    assert table.column("nome").to_pylist() == ["João", "Conceição"]
    assert table.column("cidade").to_pylist() == ["São Paulo", "Niterói"]
    assert rejects == []


def test_a_utf16_file_with_its_bom_is_read(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_bytes(b"\xff\xfe" + "a,b\n1,ç\n".encode("utf-16-le"))
    table, _ = _read(src, "utf-16-le")
    assert table.to_pydict() == {"a": ["1"], "b": ["ç"]}
    # the BOM is no part of the first cell when the first row is data
    table, _ = _read(src, "utf-16-le", Options(header=("x", "y")))
    assert table.to_pydict() == {"x": ["a", "1"], "y": ["b", "ç"]}


def test_gzip_input_is_read_through(tmp_path: Path) -> None:
    src, plain = tmp_path / "a.csv.gz", tmp_path / "b.csv"
    src.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    plain.write_text("a,b\n1,2\n")
    assert is_gzip(src)
    assert not is_gzip(plain)
    table, _ = _read(src)
    assert table.to_pydict() == {"a": ["1"], "b": ["2"]}


def _batch(values: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"v": pa.array(values, pa.string())})


def test_rebatch_cuts_exact_chunks_numbered_from_the_first_record() -> None:
    # given reader blocks of 3, 1 and 4 rows, a reject arriving with the second
    late = Reject(None, "bad", "x")
    blocks = [(_batch(["a", "b", "c"]), []), (_batch(["d"]), [late]), (_batch(list("efgh")), [])]
    # when re-cut into chunks of 3
    chunks = list(rebatch(iter(blocks), 3))
    # then 3, 3 and the rest, each numbered by its first record
    assert [c.table.column("v").to_pylist() for c in chunks] == [
        ["a", "b", "c"],
        ["d", "e", "f"],
        ["g", "h"],
    ]
    assert [c.start for c in chunks] == [0, 3, 6]
    assert [c.rejects for c in chunks] == [[], [late], []]


def test_rebatch_hands_over_rejects_that_come_after_the_last_row() -> None:
    tail = Reject(None, "bad", "y")
    chunks = list(rebatch(iter([(_batch(["a", "b"]), []), (_batch([]), [tail])]), 2))
    assert [(c.table.num_rows, c.start, c.rejects) for c in chunks] == [(2, 0, []), (0, 2, [tail])]
    assert list(rebatch(iter([]), 5)) == []


def test_a_row_past_the_line_limit_is_a_reject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given limits shrunk from 8 MiB a row to 20 bytes (every batch checked for long rows)
    monkeypatch.setattr(csvread, "MAX_LINE_CHARS", 20)
    monkeypatch.setattr(csvread, "LONG_ROW_BYTES", 0)
    src = tmp_path / "a.csv"
    src.write_text("a,b\n1,2\n" + "x" * 30 + ",y\n3,4\n")
    table, rejects = _read(src)
    # then the long row is rejected with its length and its start; the others are read
    assert table.to_pydict() == {"a": ["1", "3"], "b": ["2", "4"]}
    assert [(r.reason, r.raw) for r in rejects] == [("row longer than 0 MiB (31 bytes)", "x" * 30)]


def test_rows_and_rejects_keep_file_order_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a file of many small blocks (shrunk from 8 MiB), bad rows and bad bytes among them
    lines = [f"{i},{i * 3}" if i % 37 else f"{i},{i},extra" for i in range(2_000)]
    body = "a,b\n" + "\n".join(lines) + "\n"
    src = tmp_path / "a.csv"
    src.write_bytes(body.encode().replace(b"500,1500", b"500,\xff"))
    monkeypatch.setattr(csvread, "CSV_BLOCK_BYTES", 256)
    # when read on the parsing threads
    table, rejects = _read(src)
    # then the rows are the good ones in file order, and each block's rejects in file order
    good = [i for i in range(2_000) if i % 37 and i != 500]
    assert table.column("a").to_pylist() == [str(i) for i in good]
    wide = [r.raw for r in rejects if r.reason.startswith("expected")]
    assert wide == [f"{i},{i},extra" for i in range(0, 2_000, 37)]
    assert [r.raw for r in rejects if r.reason == undecodable("utf-8")] == ["500,\\xff"]
