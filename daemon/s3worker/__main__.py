import sys

from s3worker.cli import main

sys.exit(main())
