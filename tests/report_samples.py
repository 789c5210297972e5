"""Results the real processors write on real public files (tests/data), for the report tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from processing import run

DATA = Path(__file__).parent / "data"
# (processor, file under tests/data): every chart kind, two logs to show one line per input.
REAL_FILES = (
    ("sales", "sales/supermarket_sales.csv"),
    ("applogs", "applogs/nginx_zanbil.log"),
    ("applogs", "applogs/alb_awsdocs.log"),  # the one with latencies
    ("appointments", "appointments/health_track_clinic.csv"),
    ("sensors", "sensors/kiel_holstenstrasse_hour.csv"),
)


def process_real_files(root: Path) -> dict[str, dict[str, Any]]:
    """Each file processed into root/<its path>/, as `s3worker process --out` does;
    returns each one's summary by its path."""
    summaries = {}
    for kind, name in REAL_FILES:
        run(kind, DATA / name, root / name)
        summaries[name] = json.loads((root / name / "summary.json").read_text())
    return summaries
