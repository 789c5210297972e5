"""The operator's command line: upload, status, dlq, results, against a deployed stack.

Synchronous boto3 (a CLI waits for one answer at a time); everything goes through the clients
built in `aws.py` and the names read from the stack's outputs in `stack.py`.
"""

from __future__ import annotations

from s3worker.errors import S3WorkerError


class OperatorError(S3WorkerError):
    """An expected failure of an operator command: printed as one line, exit code 2."""

    exit_code = 2


class UnreachableError(OperatorError):
    """AWS (or AWS_ENDPOINT_URL) did not answer: worth trying again; exit code 4."""

    exit_code = 4
