"""Each built-in processor side by side with the DuckDB query a data engineer would write.

One module per kind in this package; `bench/bench_vs_duckdb.py` runs every one it finds.
A kind's module defines:

    KIND: str                                       # the processor's registry name
    make_input(path: Path, size_bytes: int) -> None # write an input of about size_bytes
    measure(path: Path, repeats: int = REPEATS) -> dict[str, Any]

`measure` runs, on the same file, the processor and a DuckDB query producing the same outputs
(partitioned Parquet where the processor partitions, the same aggregates, bad rows skipped),
and returns at least

    processor_s  median seconds of the processor (s3worker.processors.base.execute)
    duckdb_s     median seconds of the DuckDB query
    ratio        processor_s / duckdb_s (at or below 1.0: the processor is at or ahead)
    peak_rss     the processor's peak RSS in bytes (the largest over the runs)

and may add more (`side_by_side` adds duckdb_peak_rss, floor_s, floor_ratio, same_outputs).
`side_by_side` below does all of it for a kind given its query: a module is then a few lines.

Every run is a fresh child process timed from after its imports (pandas, pyarrow, duckdb are
loaded by then, as they are in the daemon's worker pool) to the last output written; the
child reports its own peak RSS as VmHWM (which, unlike getrusage's ru_maxrss, starts afresh
at exec instead of inheriting the parent's). The runs alternate (processor, DuckDB, pandas'
pyarrow read, then again) so that load from other work on the machine falls on all of them.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

REPEATS = 3
# DuckDB stopped once it has run this many times the processor's time in the same round
# (None: never); bench_vs_duckdb.py --duckdb-timeout-factor sets it.
DUCKDB_TIMEOUT_FACTOR: float | None = None
CHILD = r"""
import json, sys, time
from pathlib import Path
mode, kind, path, out = sys.argv[1:5]
if mode == "floor":
    import pandas as pd
elif mode == "duckdb":
    import duckdb
    sql = Path(sys.argv[5]).read_text()
else:
    from s3worker.processors.base import JobContext, execute
    from s3worker.processors.registry import registry
    processor = registry.get(kind)
start = time.perf_counter()
if mode == "floor":
    rows = len(pd.read_csv(path, engine="pyarrow", on_bad_lines="skip"))
elif mode == "duckdb":
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(sql)
    rows = -1
else:
    src = Path(path)
    ctx = JobContext(key=src.name, size=src.stat().st_size)
    rows = sum(execute(processor, src, Path(out), ctx).rows.values())
seconds = time.perf_counter() - start
status = Path("/proc/self/status").read_text()
peak = next(int(l.split()[1]) * 1024 for l in status.splitlines() if l.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "peak_rss": peak, "rows": rows}))
"""
Check = Callable[[Path, Path], bool]


def run_child(
    mode: str, kind: str, path: Path, out: Path, sql: str = "", timeout: float | None = None
) -> dict[str, float]:
    """One timed run in a fresh process: `processor`, `duckdb` (runs `sql`) or `floor`;
    stopped after `timeout` seconds (then {"seconds": timeout, "unfinished": 1})."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    argv = [sys.executable, "-c", CHILD, mode, kind, str(path), str(out)]
    if mode == "duckdb":
        query = out.parent / f"{out.name}.sql"
        query.write_text(sql)
        argv.append(str(query))
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": float(timeout or 0), "unfinished": 1}
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run of {kind} on {path.name} failed:\n{done.stderr[-4000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def side_by_side(
    kind: str, path: Path, sql: Callable[[Path, Path], str], repeats: int, check: Check | None
) -> dict[str, Any]:
    """The processor, DuckDB's `sql(path, out_dir)` and the pyarrow read, alternated
    `repeats` times on `path`; medians of the times, the largest peak RSS of each; with
    `check`, whether the last runs' outputs agree (`check(processor_out, duckdb_out)`)."""
    runs: dict[str, list[dict[str, float]]] = {"processor": [], "duckdb": [], "floor": []}
    with tempfile.TemporaryDirectory(prefix=f"vs-duckdb-{kind}-", dir=path.parent) as tmp:
        outs = {mode: Path(tmp) / mode for mode in runs}
        run_child("floor", kind, path, outs["floor"])  # warms the page cache for every run
        for _ in range(repeats):
            for mode, out in outs.items():
                query = sql(path, out) if mode == "duckdb" else ""
                bound = None
                if mode == "duckdb" and DUCKDB_TIMEOUT_FACTOR:
                    bound = runs["processor"][-1]["seconds"] * DUCKDB_TIMEOUT_FACTOR
                runs[mode].append(run_child(mode, kind, path, out, query, bound))
        unfinished = any(r.get("unfinished") for r in runs["duckdb"])
        same = check(outs["processor"], outs["duckdb"]) if check and not unfinished else None
    seconds = {m: statistics.median(r["seconds"] for r in rs) for m, rs in runs.items()}
    peak = {m: max(int(r.get("peak_rss", 0)) for r in rs) for m, rs in runs.items()}
    ratio = round(seconds["processor"] / seconds["duckdb"], 3)
    return {
        "processor_s": round(seconds["processor"], 3),
        # Stopped unfinished: DuckDB took longer than this, so the ratio is below it.
        "duckdb_s": round(seconds["duckdb"], 3) if not unfinished else None,
        "ratio": ratio if not unfinished else None,
        **({"duckdb_unfinished_after_s": round(seconds["duckdb"], 3)} if unfinished else {}),
        **({"ratio_below": ratio} if unfinished else {}),
        "peak_rss": peak["processor"],
        "duckdb_peak_rss": peak["duckdb"] if not unfinished else None,
        "floor_s": round(seconds["floor"], 3),
        "floor_ratio": round(seconds["floor"] / seconds["processor"], 3),
        "same_outputs": same,
        "runs": {m: [round(r["seconds"], 3) for r in rs] for m, rs in runs.items()},
    }


def same_tables(
    a: pa.Table, b: pa.Table, keys: list[str], columns: list[str] | None = None
) -> bool:
    """The same rows once sorted by `keys`: floats to 1e-9 relative (sums added in another
    order differ in the last bits), everything else as text; `columns` (default all of a's)."""
    if a.num_rows != b.num_rows:
        return False
    order = [(k, "ascending") for k in keys]
    a, b = a.sort_by(order), b.sort_by(order)
    for name in columns or a.column_names:
        x, y = a.column(name).to_pylist(), b.column(name).to_pylist()
        if pa.types.is_floating(a.schema.field(name).type):
            if not np.allclose(np.array(x, float), np.array(y, float), rtol=1e-9, equal_nan=True):
                return False
        elif [str(v) for v in x] != [str(v) for v in y]:
            return False
    return True
