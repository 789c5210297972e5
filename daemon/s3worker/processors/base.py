"""The processor contract: plain synchronous code, a local file in, output files out.

Processors run in a worker process (never on the event loop) and know nothing of AWS or
asyncio. A module that defines one must not import pandas at import time: the daemon's
main process imports every processor to route files and must stay light to start fast.
"""

from __future__ import annotations

import abc
import gzip
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

GZIP_MAGIC = b"\x1f\x8b"
SAMPLE_BYTES = 64 * 1024
SUMMARY_NAME = "summary.json"


@dataclass(frozen=True)
class Sample:
    """What routing may look at: the key (as metadata only) and the first bytes, gunzipped."""

    key: str
    head: bytes
    compressed: bool

    @property
    def text(self) -> str:
        return self.head.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class JobContext:
    """What a processor knows about its input besides the bytes."""

    key: str
    size: int
    chunk_rows: int = 250_000


@dataclass
class ProcessResult:
    """A processor's answer: headline figures and the row count of each output it wrote."""

    summary: dict[str, Any]
    rows: dict[str, int] = field(default_factory=dict)


class Processor(abc.ABC):
    """Base class of every processor, built in or registered through an entry point."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"

    def sniff(self, sample: Sample) -> float:
        """Confidence in [0, 1] that this processor understands the sample. Must be cheap."""
        return 0.0

    @abc.abstractmethod
    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        """Read `src`, write outputs under `out_dir` (not summary.json), return the result."""


def read_sample(path: Path, key: str, limit: int = SAMPLE_BYTES) -> Sample:
    """The first `limit` bytes of a local file, decompressed when it is gzip (by content)."""
    with path.open("rb") as f:
        head = f.read(limit)
    if not head.startswith(GZIP_MAGIC):
        return Sample(key=key, head=head, compressed=False)
    with path.open("rb") as f:
        raw = f.read(limit * 4)
    try:
        text = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16).decompress(raw, limit)
    except zlib.error:
        text = b""
    return Sample(key=key, head=text, compressed=True)


def open_text(path: Path) -> Any:
    """Open a local input as UTF-8 text, transparently gunzipping it (detected by content)."""
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8", errors="strict", newline="")
    return path.open("r", encoding="utf-8", errors="strict", newline="")


def execute(processor: Processor, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    """Run a processor and write its summary.json. This is what the worker pool calls."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = processor.process(src, out_dir, ctx)
    summary = {"processor": processor.name, "version": processor.version, **result.summary}
    (out_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return result
