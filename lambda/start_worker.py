"""Start (and scale) the s3worker EC2 pool when files arrive; also the pool's stack-delete cleanup.

The Lambda's handler (`start_worker.handler`). Deployed as `dist/lambda.zip` (`lambda/build.py`):
this file, the `starter` package beside it and the daemon's shared pure `s3worker.skiprules`.
Python 3.11+, boto3 from the runtime, stdlib otherwise.

Environment (names fixed by the CloudFormation template):
  S3WORKER_QUEUE_URL                 required  the work queue; its counters are the backlog
  S3WORKER_LAUNCH_TEMPLATE_ID        required  every new worker is launched from it
  S3WORKER_LAUNCH_TEMPLATE_VERSION   `$Latest`
  S3WORKER_POOL_TAG                  required  `key=value`; pool members are found by this tag only
  S3WORKER_MAX_WORKERS               1         cap on the pool (members not terminated)
  S3WORKER_FILES_PER_WORKER          500       backlog one worker is expected to take
  S3WORKER_SUBNET_IDS                empty     comma list tried in order on capacity errors
                                               (empty: the launch template's subnet)
  S3WORKER_INSTANCE_TYPES            empty     comma list of fallback types on capacity errors,
                                               tried after the launch template's type
  S3WORKER_CAPACITY_TYPE             on-demand on-demand, spot or spot-then-on-demand
  S3WORKER_DECISION_CACHE_SECONDS    5         how long an observation is reused by a warm container
  S3WORKER_METRICS_NAMESPACE         S3worker/<pool tag value>  of the decision metrics (EMF)
  LOG_LEVEL                          INFO

Events: EventBridge "Object Created" (aws.s3), the reconciler schedule (aws.events "Scheduled
Event"), S3 notifications (`Records[]`), and CloudFormation custom-resource requests
(`Custom::WorkerPoolCleanup`: Delete terminates the pool). Anything else is logged and ignored.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from starter.act import CapacityError
from starter.cleanup import CLEANUP_POLL_S, send_response
from starter.decide import MEMBER_STATES, Backlog, Decision, Pool, decide
from starter.events import parse_event
from starter.logs import JsonFormatter, configure_logging
from starter.runtime import LambdaContext, Runtime
from starter.settings import CapacityType, Settings

__all__ = [
    "CLEANUP_POLL_S",
    "MEMBER_STATES",
    "Backlog",
    "CapacityError",
    "CapacityType",
    "Decision",
    "JsonFormatter",
    "Pool",
    "Runtime",
    "Settings",
    "decide",
    "handler",
    "parse_event",
    "send_response",
]


@functools.cache
def _default_runtime() -> Runtime:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    return Runtime()


def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """The Lambda entry point."""
    return _default_runtime().handle(event, context)
