"""Incident precision and recall of the sensors processor on SKAB (labelled, public).

SKAB (Skoltech Anomaly Benchmark, github.com/waico/SKAB, GPL-3.0): a water-pump testbed, one
reading a second of eight sensors, `;`-separated, with an `anomaly` label per row. Get it with

    git clone --depth 1 https://github.com/waico/SKAB /tmp/skab

then run

    .venv/bin/python bench/bench_sensors_detection.py /tmp/skab --split holdout

Each file becomes one device in the processor's long format (device, timestamp, metric, value;
one metric per sensor column) and goes through the processor unchanged. An incident is a run
of rows labelled 1; it is found when any anomaly of any metric overlaps it (start..end, both
inclusive); an anomaly that overlaps no incident is a false positive. Precision = anomalies
overlapping an incident / anomalies flagged; recall = incidents found / incidents.

Splits: `tune` = files with an even number (and anomaly-free.csv, where every anomaly is a
false positive), `holdout` = files with an odd number. Thresholds are chosen on `tune` only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from s3worker.processors.base import JobContext, execute
from s3worker.processors.registry import registry

LABELS = ("anomaly", "changepoint")


@dataclass
class FileScore:
    name: str
    incidents: int
    found: int
    flagged: int
    true_flags: int

    def row(self) -> str:
        return (
            f"{self.name:<28} incidents {self.incidents:>2}  found {self.found:>2}  "
            f"flagged {self.flagged:>4}  false positives {self.flagged - self.true_flags:>4}"
        )


def split_of(path: Path) -> str:
    return "tune" if not path.stem.isdigit() or int(path.stem) % 2 == 0 else "holdout"


def files(root: Path, split: str) -> list[Path]:
    data = root / "data" if (root / "data").is_dir() else root
    found = sorted(data.glob("**/*.csv"), key=lambda p: (p.parent.name, p.stem.zfill(4)))
    return [p for p in found if split in ("all", split_of(p))]


def read_skab(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep=";")
    frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True)
    return frame


def to_long(frame: pd.DataFrame, device: str, dest: Path) -> None:
    """One device, one metric per sensor column: the processor's long format."""
    sensors = [c for c in frame.columns if c not in ("datetime", *LABELS)]
    long = frame.melt(id_vars="datetime", value_vars=sensors, var_name="metric")
    long.insert(0, "device", device)
    long["timestamp"] = long.pop("datetime").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    long[["device", "timestamp", "metric", "value"]].to_csv(dest, index=False)


def incidents(frame: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if "anomaly" not in frame:
        return []
    flag = frame["anomaly"].fillna(0).astype(bool)
    run = (flag != flag.shift()).cumsum()
    spans = frame[flag].groupby(run[flag])["datetime"].agg(["min", "max"])
    return list(zip(spans["min"], spans["max"], strict=True))


def detect(src: Path, out: Path, chunk_rows: int) -> pd.DataFrame:
    ctx = JobContext(key=src.name, size=src.stat().st_size, chunk_rows=chunk_rows)
    execute(registry.get("sensors"), src, out, ctx)
    found = pd.read_parquet(out / "anomalies.parquet")
    found["until"] = found["until"].fillna(found["timestamp"])
    return found


def score(path: Path, work: Path, chunk_rows: int) -> tuple[FileScore, pd.DataFrame]:
    name = f"{path.parent.name}/{path.name}"
    frame = read_skab(path)
    src = work / f"{path.parent.name}-{path.stem}.csv"
    to_long(frame, name, src)
    found = detect(src, work / f"out-{path.parent.name}-{path.stem}", chunk_rows)
    spans = incidents(frame)
    hits = [(found["timestamp"] <= end) & (found["until"] >= start) for start, end in spans]
    inside = pd.concat(hits, axis=1).any(axis=1) if hits else pd.Series(False, index=found.index)
    found["true"] = inside
    return FileScore(
        name, len(spans), sum(bool(h.any()) for h in hits), len(found), int(inside.sum())
    ), found


def report(scores: list[FileScore], flags: pd.DataFrame, split: str) -> dict[str, object]:
    incidents_n = sum(s.incidents for s in scores)
    flagged = sum(s.flagged for s in scores)
    true = sum(s.true_flags for s in scores)
    precision = true / flagged if flagged else 1.0
    recall = sum(s.found for s in scores) / incidents_n if incidents_n else 1.0
    kinds: dict[str, dict[str, int]] = {}
    if len(flags):
        for kind, group in flags.groupby("reason")["true"]:
            kinds[str(kind)] = {"flagged": len(group), "true": int(group.sum())}
    return {
        "split": split,
        "files": len(scores),
        "incidents": incidents_n,
        "found": sum(s.found for s in scores),
        "flagged": flagged,
        "false_positives": flagged - true,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "by_kind": kinds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("skab", type=Path, help="the SKAB checkout (or its data/ folder)")
    parser.add_argument("--split", choices=("tune", "holdout", "all"), default="holdout")
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    args = parser.parse_args()
    scores, flags = [], []
    with tempfile.TemporaryDirectory(prefix="s3worker-skab-") as tmp:
        for path in files(args.skab, args.split):
            file_score, found = score(path, Path(tmp), args.chunk_rows)
            print(file_score.row(), flush=True)
            scores.append(file_score)
            flags.append(found)
    every = pd.concat(flags, ignore_index=True) if flags else pd.DataFrame()
    print(json.dumps(report(scores, every, args.split)))


if __name__ == "__main__":
    main()
