"""Two daemon sources side by side, alternated (A B A B) in one run on the emulator: CPU seconds
per small file and cold start to READY=1. For "not worse than before" on a loaded machine.

    git archive BASE daemon | tar -x -C /tmp/base       # the daemon before a change
    .venv/bin/python bench/ab_daemon.py --baseline /tmp/base/daemon [--rounds 3]

A is this checkout; B runs with PYTHONPATH=BASELINE (the daemon and its worker processes
import that package instead). Optionally through the latency proxy (--latency-ms), which then
counts each run's calls per file too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from bench_latency import counted, latency_proxy
from bench_pipeline import cold_start, enqueue, make_corpus, run_daemon, upload_corpus
from common import emulator
from procs import Pipeline


@contextlib.contextmanager
def source(path: str | None) -> Iterator[None]:
    before = os.environ.get("PYTHONPATH")
    if path:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (path, before) if p)
    try:
        yield
    finally:
        os.environ.pop("PYTHONPATH", None)
        if before is not None:
            os.environ["PYTHONPATH"] = before


def one(files: int, folder: Path, latency_ms: float) -> dict[str, Any]:
    pipe = Pipeline.create(f"ab-{uuid.uuid4().hex[:8]}", visibility_timeout=60)
    enqueue(pipe.queue_url, upload_corpus(pipe, make_corpus(folder, 60), files))
    run = folder / uuid.uuid4().hex[:6]
    run.mkdir()
    daemon = partial(run_daemon, pipe, pipe.queue_url, pipe.processed, files, run)
    calls: dict[str, Any] = {}
    if latency_ms:  # the proxy counts the calls too
        with latency_proxy(os.environ["AWS_ENDPOINT_URL"], latency_ms) as url:
            result = counted(url, files, daemon)
        calls = {"calls_per_file_total": result["calls_per_file_total"]}
    else:
        result = daemon()
    ready = cold_start(3, run)["ready_median_s"]
    return {"files_per_s": result["files_per_s"], "cpu_s_per_file": result["cpu_s_per_file"],
            "ready_s": ready, **calls}  # fmt: skip


def cold(folder: Path) -> dict[str, Any]:
    return {"ready_s": cold_start(1, folder)["ready_median_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", required=True, help="the other daemon's package parent")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--cold-only", action="store_true", help="only cold starts, one a turn")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"this": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="s3worker-ab-") as tmp, emulator():
        for _ in range(args.rounds):
            for name, path in (("this", None), ("baseline", args.baseline)):
                with source(path):
                    runs[name].append(
                        cold(Path(tmp)) if args.cold_only
                        else one(args.files, Path(tmp), args.latency_ms)
                    )  # fmt: skip
    medians = {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        for name, rows in runs.items()
    }
    print(json.dumps({"runs": runs, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
