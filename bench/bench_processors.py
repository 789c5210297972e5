"""Processor throughput and peak memory against the parsing floor, on generated CSV files.

For each kind and size: generate the file (vectorised, streamed), then in fresh processes
(1) run the processor, (2) `pandas.read_csv(engine="pyarrow")` the same file. Each child
reports its own wall time and peak RSS (getrusage of itself), so runs do not mix.
Writes bench/results/processors.{json,md}.

    .venv/bin/python bench/bench_processors.py --kinds sensors,sales,applogs --sizes 0.5,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from s3worker.samples import write_sample

GIB = 1 << 30
RESULTS = Path(__file__).parent / "results"
CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, kind, path, out = sys.argv[1:5]
start = time.perf_counter()
if mode == "floor":
    import pandas as pd
    rows = len(pd.read_csv(path, engine="pyarrow", on_bad_lines="skip"))
else:
    from s3worker.processors.base import JobContext, execute
    from s3worker.processors.registry import registry
    src = Path(path)
    ctx = JobContext(key=src.name, size=src.stat().st_size)
    result = execute(registry.get(kind), src, Path(out), ctx)
    rows = sum(result.rows.values())
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
peak, cpu = usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss": peak, "rows": rows}))
"""


def generate(kind: str, size: float, folder: Path) -> Path:
    """A file of about `size` GiB (kept in `folder`: made once): a CSV sample, or for applogs
    an nginx combined access log (what bench/vs_duckdb/applogs.py measures)."""
    path = folder / f"{kind}-{size:g}GiB.{'log' if kind == 'applogs' else 'csv'}"
    if path.exists():
        return path
    if kind == "applogs":
        sys.path.insert(0, str(Path(__file__).parent / "vs_duckdb"))
        from applogs import make_input

        return make_input(path, int(size * GIB))
    started = time.perf_counter()
    write_sized(kind, path, int(size * GIB))
    took = time.perf_counter() - started
    print(f"generated {path.name}: {path.stat().st_size / 1e6:.0f} MB in {took:.1f} s", flush=True)
    return path


def write_sized(kind: str, path: Path, size_bytes: int) -> None:
    """A sample CSV of about `size_bytes`: rows estimated from a small sample's bytes per row."""
    probe = path.with_name(f".probe-{path.name}")
    truth = write_sample(kind, 200_000, probe)
    per_row = probe.stat().st_size / truth.rows
    probe.unlink()
    write_sample(kind, int(size_bytes / per_row), path)


def measure(
    mode: str, kind: str, path: Path, out: Path, code: str | None = None
) -> dict[str, float]:
    """One child's figures; `code` is another checkout's `daemon` folder to run instead."""
    env = {**os.environ, "PYTHONHASHSEED": "0", **({"PYTHONPATH": code} if code else {})}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, kind, str(path), str(out)],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench(kind: str, size: float, folder: Path) -> dict[str, object]:
    path = generate(kind, size, folder)
    mb = path.stat().st_size / 1e6
    measure("floor", kind, path, folder / "warm")  # warms the page cache for both runs
    floor = measure("floor", kind, path, folder / "floor")
    proc = measure("process", kind, path, folder / f"out-{kind}-{size:g}")
    row = {
        "kind": kind,
        "size_gib": size,
        "file_mb": round(mb, 1),
        "process_s": round(proc["seconds"], 2),
        "process_mb_s": round(mb / proc["seconds"], 1),
        "process_peak_rss_mb": round(proc["peak_rss"] / 1e6),
        "floor_s": round(floor["seconds"], 2),
        "floor_mb_s": round(mb / floor["seconds"], 1),
        "floor_peak_rss_mb": round(floor["peak_rss"] / 1e6),
        "ratio_to_floor": round(floor["seconds"] / proc["seconds"], 2),
    }
    print(json.dumps(row), flush=True)
    return row


def write_results(new: list[dict[str, object]]) -> None:
    """Merge into the saved runs: a (kind, size) measured again replaces its old figures."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = RESULTS / "processors.json"
    old = json.loads(saved.read_text())["runs"] if saved.exists() else []
    fresh = {(r["kind"], r["size_gib"]) for r in new}
    rows = [r for r in old if (r["kind"], r["size_gib"]) not in fresh] + new
    rows.sort(key=lambda r: (str(r["kind"]), float(str(r["size_gib"]))))
    meta = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }
    (RESULTS / "processors.json").write_text(
        json.dumps({"meta": meta, "runs": rows}, indent=2) + "\n"
    )
    head = (
        "| kind | GiB | MB | processor MB/s | floor MB/s | ratio "
        "| processor peak RSS MB | floor peak RSS MB |"
    )
    lines = [
        f"# Processor benchmark ({meta['cpus']} CPUs, {meta['when']})",
        "",
        head,
        "|" + "---|" * 8,
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['size_gib']} | {r['file_mb']} | {r['process_mb_s']} "
            f"| {r['floor_mb_s']} "
            f"| {r['ratio_to_floor']} | {r['process_peak_rss_mb']} | {r['floor_peak_rss_mb']} |"
        )
    (RESULTS / "processors.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", default="sensors,sales")
    parser.add_argument("--sizes", default="0.5,1,2", help="GiB, comma-separated")
    parser.add_argument("--dir", help="where files go (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s3worker-bench-") as tmp:
        folder = Path(args.dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        sizes = [float(s) for s in args.sizes.split(",")]
        rows = [bench(kind, size, folder) for kind in args.kinds.split(",") for size in sizes]
    write_results(rows)
    print((RESULTS / "processors.md").read_text())


if __name__ == "__main__":
    main()
