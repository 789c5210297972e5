"""`s3worker process --out DIR`: each run's results in a fresh directory, never mixed.

The processor writes into a staging directory next to DIR; only when it succeeds does the
staging directory replace DIR. A failed run leaves DIR as it was and no partial outputs.
DIR is replaced only when it is empty or holds an earlier run's results (a summary.json),
so a mistyped `--out ~` cannot wipe a home directory.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from s3worker.contract import SUMMARY_NAME
from s3worker.exits import UsageError


def check_replaceable(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UsageError(f"--out {out} is not a directory; choose a directory for the results")
    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY_NAME).exists():
        raise UsageError(
            f"--out {out} is not empty and holds no earlier results ({SUMMARY_NAME}); "
            "choose a new or empty directory"
        )


@contextmanager
def fresh_output(out: Path) -> Iterator[Path]:
    """Yield an empty staging directory; on success it becomes `out`, else it is removed."""
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
