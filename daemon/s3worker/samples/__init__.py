"""Realistic sample files of each kind, with planted anomalies, conflicts and malformed rows.

Every generator returns the ground truth of what it planted, so tests (and users) can check
that the processors find it. Generation is vectorised (numpy + pyarrow's CSV writer) and
streamed in blocks, fast enough to write gigabytes for the benchmark.
"""

from s3worker.samples.writing import FORMATS, KINDS, Truth, write_sample

__all__ = ["FORMATS", "KINDS", "Truth", "write_sample"]
