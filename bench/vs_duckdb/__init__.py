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

and may add more (`side_by_side` adds duckdb_peak_rss, floor_s, floor_ratio, same_outputs,
the CPU figures below and every run's details).
`side_by_side` below does all of it for a kind given its query: a module is then a few lines.

With `TIMEOUT_FACTOR` set (`bench_vs_duckdb.py --duckdb-timeout-factor F`), a DuckDB run is
stopped after F times the processor's run before it: such a row has `duckdb_s` None,
`duckdb_unfinished_after_s` (the longest limit) and `ratio_below` (the ratio is below it, 1/F
when every DuckDB run was stopped), instead of `ratio`.

Every run is a fresh child process timed from after its imports (pandas, pyarrow, duckdb are
loaded by then, as they are in the daemon's worker pool) to the last output written; the
child reports the user and system CPU of that part (getrusage, its threads and children
included) and its own peak RSS as VmHWM (which, unlike getrusage's ru_maxrss, starts afresh
at exec instead of inheriting the parent's). A round is the processor, pandas' pyarrow read,
DuckDB, the read again; before every run, whichever side, the machine is settled the same way
(`_settle`: the input read through the page cache, then the wait for the host to have taken
back the memory freed by the run before). The row adds `processor_cpu_s`, `duckdb_cpu_s`,
`floor_cpu_s` (medians of user+sys), `cpu_ratio` (processor / DuckDB), `floor_cpu_ratio`
(read / processor), `floor_best_s` and `floor_best_cpu_s`, `floor_after` (the read's median
seconds and CPU after the processor and after DuckDB: equal when the settling works) and
`run_details` (every run in order: its figures, what the settling found, vmstat deltas and
the MiB the guest reported free to the host during the run).
"""

from __future__ import annotations

import json
import os
import resource
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

from vs_duckdb._settle import costs, reported_kib, settle, vmstat

REPEATS = 3
TIMEOUT_FACTOR: float | None = None  # see the docstring; set by bench_vs_duckdb.py
CHILD = r"""
import json, resource, sys, time
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
def cpu():
    mine, theirs = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return mine.ru_utime + theirs.ru_utime, mine.ru_stime + theirs.ru_stime
user0, sys0 = cpu()
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
user1, sys1 = cpu()
status = Path("/proc/self/status").read_text()
peak = next(int(l.split()[1]) * 1024 for l in status.splitlines() if l.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "user_s": user1 - user0, "sys_s": sys1 - sys0,
                  "peak_rss": peak, "rows": rows}))
"""
Check = Callable[[Path, Path], bool]


def run_child(
    mode: str, kind: str, path: Path, out: Path, sql: str = "", timeout: float | None = None
) -> dict[str, float]:
    """One timed run in a fresh process: `processor`, `duckdb` (runs `sql`) or `floor`;
    stopped after `timeout` seconds ({"seconds": timeout, "unfinished": 1}: a lower bound).
    Besides the child's own figures for its timed part (seconds, user_s, sys_s, peak_rss),
    `process_cpu_s`: the whole process's user+sys, imports included (getrusage of the
    children, which subprocess.run has waited for)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    argv = [sys.executable, "-c", CHILD, mode, kind, str(path), str(out)]
    if mode == "duckdb":
        query = out.parent / f"{out.name}.sql"
        query.write_text(sql)
        argv.append(str(query))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child
        return {"seconds": float(timeout or 0), "unfinished": 1, **_cpu_since(before)}
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run of {kind} on {path.name} failed:\n{done.stderr[-4000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, **_cpu_since(before)}


def _cpu_since(before: resource.struct_rusage) -> dict[str, float]:
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"process_cpu_s": round(used, 3)}


def settled_run(
    mode: str, kind: str, path: Path, out: Path, sql: str = "", timeout: float | None = None
) -> dict[str, Any]:
    """`run_child` after `_settle.settle`, with what the settling found and what the run
    cost the machine (vmstat deltas, MiB reported to the host) beside its figures."""
    found = settle(path)
    counters, reported = vmstat(), reported_kib()
    result = run_child(mode, kind, path, out, sql, timeout)
    return {"mode": mode, **result, **found, **costs(counters, reported)}


def side_by_side(
    kind: str, path: Path, sql: Callable[[Path, Path], str], repeats: int, check: Check | None
) -> dict[str, Any]:
    """`repeats` rounds of the processor, pandas' pyarrow read, DuckDB's `sql(path, out_dir)`
    and the read again on `path`, every run after the same settling (`_settle`); medians of
    the times and of the CPU (user+sys), the read's best too, the largest peak RSS of each;
    with `check`, whether the last runs' outputs agree (`check(processor_out, duckdb_out)`)."""
    runs: dict[str, list[dict[str, Any]]] = {"processor": [], "duckdb": [], "floor": []}
    order = ["processor", "floor", "duckdb", "floor"]  # a read after each of the others
    sequence: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"vs-duckdb-{kind}-") as tmp:
        outs = {mode: Path(tmp) / mode for mode in runs}
        for _ in range(repeats):
            for mode in order:
                out = outs[mode]
                query = sql(path, out) if mode == "duckdb" else ""
                limit = _limit(runs["processor"]) if mode == "duckdb" else None
                run = settled_run(mode, kind, path, out, query, limit)
                run["after"] = sequence[-1]["mode"] if sequence else None
                runs[mode].append(run)
                sequence.append(run)
        stopped = [r["seconds"] for r in runs["duckdb"] if r.get("unfinished")]
        same = check(outs["processor"], outs["duckdb"]) if check and not stopped else None
    return summary(sequence, stopped, same)


def summary(
    sequence: list[dict[str, Any]], stopped: list[float], same: bool | None
) -> dict[str, Any]:
    """The row's figures from the runs of `side_by_side`, in the order they ran."""
    runs = {m: [r for r in sequence if r["mode"] == m] for m in ("processor", "duckdb", "floor")}
    seconds = {m: statistics.median(r["seconds"] for r in rs) for m, rs in runs.items()}
    cpu = {
        m: _median([r["user_s"] + r["sys_s"] for r in rs if not r.get("unfinished")])
        for m, rs in runs.items()
    }
    split = {
        part: {
            m: _median([r[part] for r in rs if not r.get("unfinished")]) for m, rs in runs.items()
        }
        for part in ("user_s", "sys_s")
    }
    peak = {m: max(int(r.get("peak_rss", 0)) for r in rs) for m, rs in runs.items()}
    ratio = round(seconds["processor"] / seconds["duckdb"], 3)
    floors = runs["floor"]
    return {
        "processor_s": round(seconds["processor"], 3),
        "duckdb_s": None if stopped else round(seconds["duckdb"], 3),
        "ratio": None if stopped else ratio,
        **({"duckdb_unfinished_after_s": round(max(stopped), 1)} if stopped else {}),
        **({"ratio_below": ratio} if stopped else {}),
        "peak_rss": peak["processor"],
        "duckdb_peak_rss": None if stopped else peak["duckdb"],
        "floor_s": round(seconds["floor"], 3),
        "floor_best_s": round(min(f["seconds"] for f in floors), 3),
        "floor_ratio": round(seconds["floor"] / seconds["processor"], 3),
        "processor_cpu_s": cpu["processor"],
        "duckdb_cpu_s": None if stopped else cpu["duckdb"],
        "floor_cpu_s": cpu["floor"],
        "floor_best_cpu_s": round(min(f["user_s"] + f["sys_s"] for f in floors), 3),
        "cpu_ratio": None if stopped else _ratio(cpu["processor"], cpu["duckdb"]),
        "floor_cpu_ratio": _ratio(cpu["floor"], cpu["processor"]),
        "floor_user_ratio": _ratio(split["user_s"]["floor"], split["user_s"]["processor"]),
        "user_s": split["user_s"],
        "sys_s": split["sys_s"],
        "floor_after": _by_predecessor(floors),
        "same_outputs": same,
        "runs": {m: [round(r["seconds"], 3) for r in rs] for m, rs in runs.items()},
        "run_details": [_rounded(r) for r in sequence],
    }


def _by_predecessor(floors: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """The reads' median seconds and CPU by the side that ran just before them."""
    out = {}
    for before in sorted({str(f["after"]) for f in floors if f["after"]}):
        mine = [f for f in floors if f["after"] == before]
        out[before] = {
            "s": _median([f["seconds"] for f in mine]),
            "cpu_s": _median([f["user_s"] + f["sys_s"] for f in mine]),
        }
    return out


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _rounded(run: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in run.items()}


def _limit(processor_runs: list[dict[str, float]]) -> float | None:
    """The DuckDB run's time limit: TIMEOUT_FACTOR times the processor's run just before."""
    return TIMEOUT_FACTOR * processor_runs[-1]["seconds"] if TIMEOUT_FACTOR else None


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
