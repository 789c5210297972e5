"""Where a report's results come from: the processed bucket's manifests, or a local folder.

Only the current results count: in the bucket, the outputs each `_manifest.json` lists (the
files of the input's newest version; older versions' files are not listed); locally, each
folder holding a `summary.json` (what `s3worker process --out DIR` writes). Of each result
only the tables its charts use are read (`CHART_TABLES`), not the normalised rows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from s3worker.contract import MANIFEST_NAME, SUMMARY_NAME, Layout, Manifest
from s3worker.exits import UsageError
from s3worker.ops.aws import explained
from s3worker.ops.s3read import get_json

# The processor's own names (a manifest output's `path`) of the tables each chart set reads.
CHART_TABLES: Mapping[str, tuple[str, ...]] = {
    "sales": ("daily_totals.parquet", "daily_store.parquet", "top_products.parquet"),
    "applogs": ("per_minute.parquet",),
    "sensors": ("hourly.parquet", "anomalies.parquet", "device_stats.parquet"),
    "appointments": ("daily_professional.parquet",),
}
READERS = 8  # inputs read at once; the operator's client pools 10 connections (ops/aws.py)


@dataclass(frozen=True)
class Result:
    """One input's current results: who processed it, its summary, the tables charts use."""

    source: str  # the input's key, or the folder's path relative to --from-dir
    processor: str
    summary: Mapping[str, Any]
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    finished_at: str = ""

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)


def from_bucket(s3: Any, bucket: str, layout: Layout, workers: int = READERS) -> list[Result]:
    """Every input with a manifest under the layout's prefix, sorted by key.

    Each input takes a few GETs (manifest, summary, tables) that wait on S3 far longer than
    they compute, so inputs are read by a few threads (a boto3 client is thread-safe)."""
    with explained(), ThreadPoolExecutor(workers) as pool:
        keys = list(manifest_keys(s3, bucket, layout))
        results = pool.map(lambda key: _from_manifest(s3, bucket, key), keys)
        return sorted(results, key=lambda r: r.source)


def manifest_keys(s3: Any, bucket: str, layout: Layout) -> Iterator[str]:
    """The manifests under the prefix; `_errors/` holds reports, never results."""
    prefix = layout.results_prefix("") if layout.prefix else ""
    errors = layout.errors_root()
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith(f"/{MANIFEST_NAME}") and not key.startswith(errors):
                yield key


def _from_manifest(s3: Any, bucket: str, manifest_key: str) -> Result:
    manifest = Manifest.parse(get_json(s3, bucket, manifest_key) or {})
    named = {o.path: o.key for o in manifest.outputs if o.path}
    summary = get_json(s3, bucket, named[SUMMARY_NAME]) if SUMMARY_NAME in named else None
    tables = {
        name: _parquet(s3, bucket, named[name])
        for name in CHART_TABLES.get(manifest.processor_name, ())
        if name in named
    }
    return Result(
        source=manifest.input.key or manifest_key.rsplit("/", 1)[0],
        processor=manifest.processor_name,
        summary=summary or {},
        tables=tables,
        finished_at=str(manifest.timings.get("finished_at", "")),
    )


def _parquet(s3: Any, bucket: str, key: str) -> pd.DataFrame:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pd.read_parquet(io.BytesIO(body))


def from_dir(root: Path) -> list[Result]:
    """Every folder under `root` (itself included) that holds a summary.json."""
    if not root.is_dir():
        raise UsageError(f"--from-dir {root}: no such directory")
    found = sorted(root.rglob(SUMMARY_NAME))
    if not found:
        raise UsageError(
            f"--from-dir {root}: no {SUMMARY_NAME} in it or below; "
            "`s3worker process FILE --out DIR` writes one"
        )
    return [_from_folder(root, path.parent) for path in found]


def _from_folder(root: Path, folder: Path) -> Result:
    summary = json.loads((folder / SUMMARY_NAME).read_text())
    processor = str(summary.get("processor", ""))
    tables = {
        name: pd.read_parquet(folder / name)
        for name in CHART_TABLES.get(processor, ())
        if (folder / name).is_file()
    }
    source = folder.relative_to(root).as_posix()
    return Result(source if source != "." else folder.name, processor, summary, tables)
