"""The decision metrics as CloudWatch Embedded Metric Format lines.

Lambda ships stdout to CloudWatch Logs, and CloudWatch extracts metrics from EMF lines there:
no PutMetricData call, no extra IAM, no agent. One line per reconcile, in the stack's namespace
(`S3worker/<stack name>`, shared with the daemon), without dimensions: the namespace already
names the stack. Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starter.logs import metrics_log

# Metric name -> unit. Counts per decision, and the observed state it was made on.
METRICS: Mapping[str, str] = {
    "WorkersStarted": "Count",  # stopped members started
    "WorkersLaunched": "Count",  # new instances launched
    "WorkersDeferred": "Count",  # need left to the reconciler (stopping/held/no capacity)
    "CapacityErrors": "Count",  # start/launch attempts refused for capacity (any market)
    "SpotFallbacks": "Count",  # instances launched on-demand because Spot had no capacity
    "Backlog": "Count",  # queue visible + delayed + objects named by events since the read
    "PoolActive": "Count",  # members pending or running before the decision
    "PoolStopped": "Count",  # members stopped (startable) before the decision
}


def _log(line: str) -> None:
    metrics_log.info(line)  # stdout in Lambda (logs.configure_logging)


@dataclass
class MetricsSink:
    """Writes one EMF document per `emit`; `write` and `clock` are injectable for tests."""

    namespace: str
    write: Callable[[str], None] = _log
    clock: Callable[[], float] = time.time
    extra: dict[str, str] = field(default_factory=dict)  # plain fields, searchable in Logs

    def emit(self, values: Mapping[str, int]) -> None:
        unknown = set(values) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metric names {sorted(unknown)}")
        document = {
            "_aws": {
                "Timestamp": int(self.clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [[]],
                        "Metrics": [{"Name": n, "Unit": METRICS[n]} for n in values],
                    }
                ],
            },
            **self.extra,
            **values,
        }
        self.write(json.dumps(document, separators=(",", ":")))
