"""The appointments processor of several checkouts on one file, alternated: wall, CPU, peak RSS.

Each variant is a `daemon` folder (e.g. `git archive <commit> daemon | tar -x -C /tmp/x`);
rounds run the variants in turn, reversed every other round, each run a fresh process.
The variant `read` (any name, the path `pandas`) is the yardstick of issue 14 instead:
`pd.read_csv(path, engine="pyarrow")` of the same file, timed after `import pandas`, as a
processor run is timed after its analysis module (pandas, pyarrow.parquet) is imported:

    .venv/bin/python bench/ab_appointments.py /tmp/appt/appointments-0.5GiB.csv 4 \\
        new=daemon,main=/tmp/main/daemon,read=pandas
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CHILD = r"""
import importlib, json, sys, time
from pathlib import Path
from s3worker.processors.base import JobContext, execute
from s3worker.processors.registry import registry
src, out = Path(sys.argv[1]), Path(sys.argv[2])
processor = registry.get("appointments")
importlib.import_module(processor.analysis)  # pandas, pyarrow.parquet: imported, as for the read
wall, cpu = time.perf_counter(), time.process_time()
execute(processor, src, out, JobContext(key=src.name, size=src.stat().st_size))
status = Path("/proc/self/status").read_text()
peak = next(int(l.split()[1]) >> 10 for l in status.splitlines() if l.startswith("VmHWM:"))
print(json.dumps({"wall": round(time.perf_counter() - wall, 2),
                  "cpu": round(time.process_time() - cpu, 2), "peak_mib": peak}))
"""
READ = r"""
import json, sys, time
from pathlib import Path
import pandas as pd
wall, cpu = time.perf_counter(), time.process_time()
pd.read_csv(sys.argv[1], engine="pyarrow", on_bad_lines="skip")
status = Path("/proc/self/status").read_text()
peak = next(int(l.split()[1]) >> 10 for l in status.splitlines() if l.startswith("VmHWM:"))
print(json.dumps({"wall": round(time.perf_counter() - wall, 2),
                  "cpu": round(time.process_time() - cpu, 2), "peak_mib": peak}))
"""


def run(src: str, code: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ab-appointments-") as out:
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": code}
        done = subprocess.run(
            [sys.executable, "-c", READ if code == "pandas" else CHILD, src, out],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row | {"load": round(os.getloadavg()[0], 1)}


def main() -> None:
    src, rounds = sys.argv[1], int(sys.argv[2])
    variants = dict(v.split("=", 1) for v in sys.argv[3].split(","))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for r in range(rounds):
        order = list(variants.items())
        for name, code in order if r % 2 == 0 else order[::-1]:
            runs[name].append(run(src, code if code == "pandas" else str(Path(code).resolve())))
            print(name, json.dumps(runs[name][-1]), flush=True)
    first, *others = variants
    summary = {}
    for other in others:
        pairs = list(zip(runs[first], runs[other], strict=True))
        summary[f"{first}/{other}"] = {
            k: round(statistics.median(a[k] / b[k] for a, b in pairs), 3) for k in ("wall", "cpu")
        }
    print(json.dumps({"file": src, "runs": runs, "median_per_round_ratios": summary}, indent=2))


if __name__ == "__main__":
    main()
