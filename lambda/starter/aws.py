"""The one place that builds the function's AWS clients, and reads their errors' codes.

Retries are botocore's own (standard mode: exponential backoff with jitter on throttling,
`RequestLimitExceeded` included, and on 5xx/timeouts), nothing on top: a loop of ours around
them multiplied the attempts (5 x 3 = 15 tries per call before).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_sqs import SQSClient

# Attempts per call, the first one included (botocore's `total_max_attempts`). A throttled
# burst waits up to ~1+2+4+8 s with full jitter, well inside the function's 300 s timeout.
MAX_ATTEMPTS = 5
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS})
# StartInstances/RunInstances: EC2 answers InsufficientInstanceCapacity with HTTP 500, which
# standard mode retries as transient. Five attempts per candidate (up to 15 s of backoff each)
# times markets x types x subnets could outlast the function before the next candidate is
# tried, so these calls get one retry: the next candidate, the invocation's own retries and the
# reconciler are the better retry for capacity.
ACT_MAX_ATTEMPTS = 2
ACT_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": ACT_MAX_ATTEMPTS})


def ec2_client(*, act: bool = False) -> EC2Client:
    """EC2 for observing and cleaning up, or (`act`) for StartInstances/RunInstances."""
    return boto3.client("ec2", config=ACT_RETRIES if act else RETRIES)


def sqs_client() -> SQSClient:
    return boto3.client("sqs", config=RETRIES)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
