"""A processor that reads tables: its declared roles give it sniffing and column checks.

Subclasses name their schema, their thresholds (with defaults) and the module holding the
pandas side; that module's `run(src, out_dir, ctx)` is imported in the worker process only.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import ClassVar

from s3worker.processors.base import JobContext, Processor, ProcessResult, Sample
from s3worker.processors.schema import Schema
from s3worker.processors.sniffing import records

TABULAR = ("csv", "json", "jsonl")


class TabularProcessor(Processor):
    """Sniffs by resolving its schema on the sample; `process` runs `analysis.run`."""

    schema: ClassVar[Schema]
    thresholds: ClassVar[Mapping[str, float]] = {}
    analysis: ClassVar[str]  # module path of the pandas side

    def sniff(self, sample: Sample) -> float:
        fmt, columns, rows = records(sample)
        return self.schema.score(columns, rows) if fmt in TABULAR else 0.0

    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        # pandas loads here, in the worker process, never when routing.
        result: ProcessResult = import_module(self.analysis).run(src, out_dir, ctx)
        return result

    @classmethod
    def threshold(cls, ctx: JobContext, name: str) -> float:
        """A threshold: the route's option if set, else the processor's default."""
        return float(ctx.options.thresholds.get(name, cls.thresholds[name]))
