"""Two daemon sources side by side, alternated (A B A B) in one run on the emulator: CPU seconds
per small file and cold start to READY=1. For "not worse than before" on a loaded machine.

    git archive BASE daemon | tar -x -C /tmp/base       # the daemon before a change
    .venv/bin/python bench/ab_daemon.py --baseline /tmp/base/daemon [--rounds 3]

A is this checkout (or --this PATH); B runs with PYTHONPATH=BASELINE (the daemon and its worker
processes import that package instead). Optionally through the latency proxy (--latency-ms), which
then counts each run's calls per file too. --callgrind: instead of times, the instructions the
daemon's process runs from its start to READY=1 (valgrind's callgrind, every thread; the process
ends as READY=1 is sent), which a loaded machine does not change.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from bench_latency import counted, latency_proxy
from bench_pipeline import (
    NotifySocket,
    cold_start,
    enqueue,
    make_corpus,
    run_daemon,
    upload_corpus,
)
from common import BIN, ROOT, emulator
from procs import Pipeline


@contextlib.contextmanager
def source(path: str | None, baseline: bool) -> Iterator[None]:
    """The daemon from `path` (None: this checkout). Daemons before 2026-12 found their region
    only through botocore, which reads AWS_DEFAULT_REGION (on EC2: the instance metadata, which
    the emulator has not), so the baseline gets it too; this checkout's daemon finds the region
    itself and runs with what the env file sets."""
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "AWS_DEFAULT_REGION")}
    if path:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (path, saved["PYTHONPATH"]) if p)
    if baseline:
        os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


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
            "ready_s": ready, "load": os.getloadavg()[0], **calls}  # fmt: skip


def cold(folder: Path) -> dict[str, Any]:
    return {"ready_s": cold_start(1, folder)["ready_median_s"], "load": os.getloadavg()[0]}


# Loaded first by the daemon's interpreter (PYTHONPATH): it ends the process once READY=1 is sent.
EXIT_AT_READY = """
import os, socket
send = socket.socket.sendall
def sendall(self, data, *args):
    try:
        return send(self, data, *args)
    finally:
        if b"READY=1" in bytes(data):
            os._exit(0)
socket.socket.sendall = sendall
"""


def instructions(folder: Path) -> dict[str, Any]:
    """One start under callgrind: the instructions (millions) to READY=1."""
    hook = folder / "exit-at-ready"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(EXIT_AT_READY)
    pipe = Pipeline.create(f"i-{uuid.uuid4().hex[:8]}")
    notify = NotifySocket(folder)
    env = {**os.environ, **pipe.env(folder / f"scratch-{uuid.uuid4().hex[:6]}",
           S3WORKER_IDLE_ACTION="none", NOTIFY_SOCKET=str(notify.path))}  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), env.get("PYTHONPATH")) if p)
    out = folder / f"callgrind-{uuid.uuid4().hex[:6]}.out"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
            str(BIN / "s3worker"), "run"]  # fmt: skip
    try:
        run = subprocess.run(argv, check=False, env=env, capture_output=True, timeout=900)
    finally:
        notify.close()
    err = run.stderr.decode(errors="replace")
    if run.returncode or notify.ready_at is None:
        raise RuntimeError(f"no READY=1 under callgrind (exit {run.returncode}): {err[-2000:]}")
    collected = [line for line in err.splitlines() if "Collected :" in line]
    return {"instructions_M": round(int(collected[-1].split(":")[-1]) / 1e6, 1)}


def compile_sources(*paths: str | None) -> None:
    """Byte-compile both daemons first, as the worker bundle's `pip install` does: where
    PYTHONDONTWRITEBYTECODE is set, every start would otherwise compile the package again (a
    cost of the harness that grows with the source, not of the daemon)."""
    for path in paths:
        compileall.compile_dir(path or str(ROOT / "daemon"), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", required=True, help="the other daemon's package parent")
    parser.add_argument("--this", help="A's package parent instead of this checkout's")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--cold-only", action="store_true", help="only cold starts, one a turn")
    parser.add_argument(
        "--callgrind", action="store_true", help="instructions to READY=1, one start a turn"
    )
    args = parser.parse_args()
    compile_sources(args.this, args.baseline)
    runs: dict[str, list[dict[str, Any]]] = {"this": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="s3worker-ab-") as tmp, emulator():
        for _ in range(args.rounds):
            for name, path in (("this", args.this), ("baseline", args.baseline)):
                with source(path, baseline=name == "baseline"):
                    runs[name].append(
                        instructions(Path(tmp)) if args.callgrind
                        else cold(Path(tmp)) if args.cold_only
                        else one(args.files, Path(tmp), args.latency_ms)
                    )  # fmt: skip
    medians = {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        for name, rows in runs.items()
    }
    print(json.dumps({"runs": runs, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
