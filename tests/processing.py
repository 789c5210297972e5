"""Helpers for the processor tests: run a processor on a generated sample, score findings."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from s3worker.processors.base import JobContext, ProcessResult, execute
from s3worker.processors.registry import registry
from s3worker.samples import Truth, write_sample


def run(kind: str, src: Path, out: Path, chunk_rows: int = 250_000) -> ProcessResult:
    ctx = JobContext(key=src.name, size=src.stat().st_size, chunk_rows=chunk_rows)
    return execute(registry.get(kind), src, out, ctx)


def sample(
    tmp: Path, kind: str, rows: int, fmt: str = "csv", gzip: bool = False
) -> tuple[Path, Truth]:
    path = tmp / f"{kind}.{fmt}{'.gz' if gzip else ''}"
    return path, write_sample(kind, rows, path, fmt=fmt, gzip=gzip, seed=11)


def scores(found: Iterable[Any], planted: Iterable[Any]) -> tuple[float, float, str]:
    """Precision, recall and a message naming both (for assertion messages)."""
    f, p = set(found), set(planted)
    hit = len(f & p)
    precision = hit / len(f) if f else 1.0
    recall = hit / len(p) if p else 1.0
    return (
        precision,
        recall,
        f"precision={precision:.3f} recall={recall:.3f} found={len(f)} planted={len(p)}",
    )


def table(out: Path, name: str, by: list[str]) -> pd.DataFrame:
    """An output read back, in a stable order, for comparisons."""
    return pd.read_parquet(out / name).sort_values(by).reset_index(drop=True)


def heavy_modules_after(statement: str) -> list[str]:
    """Which of pandas, numpy and pyarrow a fresh interpreter has imported after `statement`
    (the daemon's main process routes files and must not load them)."""
    code = f"import sys; {statement}; print(sorted(m for m in HEAVY if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", f"HEAVY = ('pandas', 'numpy', 'pyarrow'); {code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(ast.literal_eval(out.stdout.strip()))
