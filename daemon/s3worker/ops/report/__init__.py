"""`s3worker report`: the current results as one self-contained HTML page of charts.

`sources` reads the results (the processed bucket's manifests, or a local folder), `charts`
turns each processor's tables into plotly figures, `page` writes the HTML with plotly.js
inlined, so the file opens anywhere, offline. Needs the `ops` extra (plotly).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from s3worker.ops.report.page import render
from s3worker.ops.report.sources import Result, from_bucket, from_dir

__all__ = ["Result", "from_bucket", "from_dir", "write"]


def write(results: list[Result], out: Path, source: str) -> int:
    """Write the page to `out` (its folder created); returns its size in bytes."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    text = render(results, source, now)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))
