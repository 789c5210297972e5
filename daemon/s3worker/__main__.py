import sys

from s3worker.cli import main

# Guarded: worker processes re-import the main module, and must not start a daemon of their own.
if __name__ == "__main__":
    sys.exit(main())
