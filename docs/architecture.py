"""Render docs/architecture.png, the README's architecture picture: `make diagram`.

Needs the `docs` extra (the `diagrams` package) and Graphviz's `dot`; `make diagram` installs
both. The editable twin of this picture is docs/architecture.drawio (draw.io / diagrams.net):
change both together. After rendering, the SHA-256 of this script and of the image are
written to docs/architecture.sha256, which tests/test_docs.py checks, so an image left behind
by an edit of this script fails the tests.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from diagrams import Cluster, Diagram, Edge, Node
from diagrams.aws.compute import EC2Instances, Lambda
from diagrams.aws.general import User
from diagrams.aws.integration import (
    Eventbridge,
    EventbridgeScheduler,
    SimpleNotificationServiceSnsEmailNotification,
    SimpleQueueServiceSqsQueue,
)
from diagrams.aws.management import CloudwatchAlarm, SystemsManager
from diagrams.aws.network import Endpoint
from diagrams.aws.storage import ElasticBlockStoreEBSVolume, SimpleStorageServiceS3Bucket

DOCS = Path(__file__).resolve().parent
IMAGE = DOCS / "architecture.png"
STAMP = DOCS / "architecture.sha256"

# Top to bottom, so the picture is narrow: the README shows it about 1,000 px wide, and
# the fonts are sized so its labels read at that width (checked by viewing the PNG scaled).
GRAPH = {
    "pad": "0.3",
    "nodesep": "1.0",
    "ranksep": "0.45",
    "fontname": "Helvetica",
    "fontsize": "34",
    "labelloc": "t",
    "splines": "spline",
}
NODE = {"fontname": "Helvetica", "fontsize": "24"}
EDGE = {"fontname": "Helvetica", "fontsize": "22"}
# Cluster titles: bigger than diagrams' 12 so they stay legible when GitHub scales the image.
BOX = {"fontname": "Helvetica", "fontsize": "24"}

# Edge colours: the work path, the control path (starting workers), failures, observation.
WORK = "#1f6fb2"
CONTROL = "#d45b07"
FAILURE = "#b3261e"
WATCH = "#6b6b6b"


VPC_TITLE = "VPC: no inbound rules;\nHTTPS out to SQS, EC2, SSM"


def icon(kind: type[Node], label: str) -> Node:
    """A node whose label, at the bigger font, stays clear of its icon."""
    return kind(label, height=f"{2.3 + 0.5 * label.count(chr(10)):.2f}")


def flow(label: str, color: str, *, style: str = "solid", constraint: bool = True) -> Edge:
    """A labelled edge; `constraint=False`: a back edge that does not bend the ranks."""
    return Edge(
        label=label,
        color=color,
        fontcolor=color,
        style=style,
        constraint="true" if constraint else "false",
        **EDGE,
    )


def render() -> None:
    with Diagram(
        "s3worker: a file lands in S3, is processed on EC2, results land in S3",
        filename=str(IMAGE.with_suffix("")),
        outformat="png",
        direction="TB",
        show=False,
        graph_attr=GRAPH,
        node_attr=NODE,
        edge_attr=EDGE,
    ):
        user = icon(User, "you\n(s3worker upload)")
        raw = icon(SimpleStorageServiceS3Bucket, "raw bucket\n(versioned)")

        with Cluster("EventBridge", graph_attr=BOX):
            rule = icon(Eventbridge, 'rule\n"Object\nCreated"')
            schedule = icon(EventbridgeScheduler, "reconciler\nschedule\nevery 5 min")

        with Cluster("SQS", graph_attr=BOX):
            queue = icon(SimpleQueueServiceSqsQueue, "work queue")
            dlq = icon(SimpleQueueServiceSqsQueue, "dead-letter\nqueue")
            events_dlq = icon(SimpleQueueServiceSqsQueue, "events DLQ\n(undelivered\nevents)")

        start = icon(Lambda, "start Lambda\nstart_worker.py")

        with Cluster(VPC_TITLE, graph_attr=BOX):
            with (
                Cluster("public subnets, 2 AZs", graph_attr=BOX),
                Cluster("worker pool  (launch template, pool tag)", graph_attr=BOX),
            ):
                workers = icon(EC2Instances, "EC2 workers\n0..MaxWorkers\nsystemd →\ns3worker")
                scratch = icon(ElasticBlockStoreEBSVolume, "EBS scratch\n(gp3, encrypted)")
            endpoint = icon(Endpoint, "S3 gateway\nendpoint")

        processed = icon(
            SimpleStorageServiceS3Bucket, "processed bucket\nresults, manifests,\nerror reports"
        )

        with Cluster("operations", graph_attr=BOX):
            alarms = icon(
                CloudwatchAlarm,
                "CloudWatch\nalarms",
            )
            email = icon(SimpleNotificationServiceSnsEmailNotification, "SNS e-mail")
            ssm = icon(SystemsManager, "Session\nManager")

        # The work path.
        user >> flow("upload", WORK) >> raw
        raw >> flow("Object Created", WORK) >> rule
        rule >> flow("target 1: the file", WORK) >> queue
        rule >> flow("undeliverable", FAILURE, style="dashed") >> events_dlq
        queue >> flow("redrive", FAILURE) >> dlq

        # The control path.
        rule >> flow("target 2", CONTROL) >> start
        schedule >> flow("every 5 min", CONTROL) >> start
        start >> flow("queue depth", CONTROL, style="dashed", constraint=False) >> queue
        start >> flow("start / launch", CONTROL) >> workers
        # The headline: no work, no cost. The worker stops its own instance.
        (
            workers
            >> flow(
                "idle (no job, queue empty):\nStopInstances on itself", CONTROL, constraint=False
            )
            >> workers
        )

        # The worker.
        workers >> flow("long poll, heartbeat, delete", WORK, constraint=False) >> queue
        workers >> flow("mounted", WORK) >> scratch
        workers >> flow("get raw object,\nput results", WORK) >> endpoint
        endpoint >> flow("results", WORK) >> processed

        # Operations.
        ssm >> flow("shell (no inbound ports)", WATCH, style="dotted") >> workers
        dlq >> flow("metrics", WATCH, style="dotted") >> alarms
        alarms >> flow("alarm", WATCH) >> email


def write_stamp() -> None:
    """Record the hashes of this script and of the image it produced (sha256sum format)."""
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  docs/{path.name}\n"
        for path in (Path(__file__).resolve(), IMAGE)
    ]
    STAMP.write_text("".join(lines))


def main() -> None:
    os.chdir(DOCS)
    render()
    write_stamp()
    print(f"wrote {IMAGE.relative_to(DOCS.parent)} and {STAMP.relative_to(DOCS.parent)}")


if __name__ == "__main__":
    main()
