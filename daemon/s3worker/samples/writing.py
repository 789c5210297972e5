"""Writing generated tables as CSV, JSON or JSON lines, gzip or not, block by block."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

FORMATS = ("csv", "json", "jsonl", "clf")  # clf: Combined Log Format, applogs only
KINDS = ("appointments", "sensors", "sales", "applogs")


@dataclass
class Truth:
    """What a generator planted: labelled items (kind -> list of keys) and broken lines."""

    planted: dict[str, list[Any]] = field(default_factory=dict)
    broken_lines: int = 0
    rows: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {"rows": self.rows, "broken_lines": self.broken_lines, "planted": self.planted},
            default=str,
        )


# A generator yields blocks: tables of string columns.
Blocks = Iterator[pa.Table]
Generator = Callable[[int, int, Truth], Blocks]


def write_sample(
    kind: str, rows: int, out: Path, fmt: str = "csv", gzip: bool = False, seed: int = 7
) -> Truth:
    """Write about `rows` rows of `kind` to `out`; return what was planted in them."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if fmt not in FORMATS or (fmt == "clf") != (kind == "applogs" and fmt == "clf"):
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)} (clf for applogs), not {fmt!r}")
    module = import_module(f"s3worker.samples.{kind}")
    truth = Truth()
    blocks: Blocks = module.generate(rows, seed, truth)
    sink = pa.output_stream(str(out), compression="gzip" if gzip else None)
    with sink:
        _write_blocks(blocks, sink, fmt, module.broken_lines(fmt), truth)
    return truth


def _write_blocks(blocks: Blocks, sink: Any, fmt: str, broken: list[str], truth: Truth) -> None:
    writer: pacsv.CSVWriter | None = None
    first = True
    for block in blocks:
        truth.rows += block.num_rows
        if fmt == "clf":
            from s3worker.samples.applogs import clf_lines

            sink.write(("\n".join(clf_lines(block)) + "\n").encode())
            continue
        if fmt == "csv":
            if writer is None:
                options = pacsv.WriteOptions(quoting_style="needed")
                writer = pacsv.CSVWriter(sink, block.schema, write_options=options)
            writer.write_table(block)
        else:
            sink.write(_json_text(block, fmt, first).encode())
        first = False
    if fmt == "json":
        sink.write(b"\n]\n" if not first else b"[]\n")
    if writer is not None:
        writer.close()  # flushes only; the stream is closed by the caller
    if broken and fmt != "json":
        sink.write(("\n".join(broken) + "\n").encode())
        truth.broken_lines = len(broken)


def _json_text(block: pa.Table, fmt: str, first: bool) -> str:
    records = [{k: v for k, v in r.items() if v is not None} for r in block.to_pylist()]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    if fmt == "jsonl":
        return "\n".join(lines) + "\n"
    return ("[\n" if first else ",\n") + ",\n".join(lines)
