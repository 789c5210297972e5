"""The operator's command line: upload, status, dlq, results, against a deployed stack.

Synchronous boto3 (a CLI waits for one answer at a time); everything goes through the clients
built in `aws.py` and the names read from the stack's outputs in `stack.py`.
"""

from __future__ import annotations

import re

from s3worker.errors import S3WorkerError

EXTRA = "ops"


class OperatorError(S3WorkerError):
    """An expected failure of an operator command: printed as one line, exit code 2."""

    exit_code = 2


class UnreachableError(OperatorError):
    """AWS (or AWS_ENDPOINT_URL) did not answer: worth trying again; exit code 4."""

    exit_code = 4


def missing_extra(exc: BaseException) -> str | None:
    """The one line for an operator command run where the `ops` extra is not installed (a
    worker carries only what the daemon needs); None for any other error."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    module = exc.name.split(".")[0]
    if module not in extra_modules():
        return None
    return (
        f"this command needs the operator extra ({module} is not installed): "
        f"pip install 's3worker[{EXTRA}]'"
    )


def extra_modules() -> frozenset[str]:
    """The top-level modules of the `ops` extra's requirements, from the installed metadata."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        requirements = requires("s3worker") or []
    except PackageNotFoundError:
        return frozenset()
    marker = re.compile(rf"extra\s*==\s*[\"']{EXTRA}[\"']")
    return frozenset(
        re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("-", "_")
        for req in requirements
        if marker.search(req)
    )
