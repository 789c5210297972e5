"""`s3worker run` with the test processor registered: how the process tests start the daemon."""

import os
import sys
from pathlib import Path

from procs import EchoProcessor
from s3worker.cli import main
from s3worker.processors.registry import registry

# Guarded: worker processes re-import the main module, and must not start a daemon of their own.
if __name__ == "__main__":
    registry.register(EchoProcessor(Path(os.environ["S3WORKER_TEST_RUNLOG"])))
    sys.exit(main(["run"]))
