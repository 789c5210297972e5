"""Build the start Lambda's deployment zip: `python lambda/build.py dist/lambda.zip`.

The zip holds the handler, its `starter` package, and the daemon's pure `s3worker.skiprules`
(vendored: the Lambda runtime has no s3worker installed, and both sides must skip the same
objects). Reproducible: fixed order and times, so the same sources give the same bytes.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENDORED = ("skiprules.py",)  # daemon/s3worker modules the Lambda imports; stdlib-only
VENDORED_INIT = '"""The s3worker modules the start Lambda shares with the daemon (vendored)."""\n'
EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest time


def members() -> dict[str, bytes]:
    """Archive name -> content, in the order written."""
    found = {"start_worker.py": (HERE / "start_worker.py").read_bytes()}
    for path in sorted((HERE / "starter").glob("*.py")):
        found[f"starter/{path.name}"] = path.read_bytes()
    found["s3worker/__init__.py"] = VENDORED_INIT.encode()
    for name in VENDORED:
        found[f"s3worker/{name}"] = (ROOT / "daemon" / "s3worker" / name).read_bytes()
    return found


def build() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members().items():
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buffer.getvalue()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python lambda/build.py DEST.zip", file=sys.stderr)
        return 2
    dest = Path(argv[0])
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(build())
    print(f"lambda: {dest} ({len(members())} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
