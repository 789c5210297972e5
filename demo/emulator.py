"""The embedded AWS for the demo (and the tests): moto's server, plus bridges for its gaps.

moto serves S3, SQS, EventBridge, EC2, IAM, Lambda and CloudFormation over HTTP. What it
does not do, and what is bridged here (never in the product code):
- Lambda code runs in Docker, which is not here: `LambdaBridge` plays the Lambda runtime and
  runs the start Lambda (from its deployment zip) in this process, with the function's
  deployed environment; one warm "container" per function, invocations one at a time
  (reserved concurrency 1).
- EventBridge rules do not deliver to Lambda targets: the bridge hands the Lambda the event
  the rule would have delivered (its own pattern and input), asynchronously, as EventBridge does.
- CloudFormation ignores the raw bucket's EventBridge switch: `enable_eventbridge` sets it.
- There is no instance metadata service: `FakeImds` answers IMDSv2 for one instance id.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import logging
import os
import queue
import secrets
import socket
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "cloudformation.yaml"
LAMBDA_BUILD = ROOT / "lambda" / "build.py"
REGION = "us-east-1"
# What stands in for AWS: the emulator's endpoint (AWS_ENDPOINT_URL) and these credentials.
# Nothing else: every other variable a worker sees comes from the env file the launch template's
# user data writes (`template_worker_env`, `worker_env_file`), so a variable the product needs but
# its own files do not set fails here as it would on EC2.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}
ENV_FILE_START = "cat > /etc/s3worker/s3worker.env <<'EOF'\n"
Json = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def load_start_worker() -> ModuleType:
    """The start Lambda's handler module, imported from the zip that deploys (one per process).

    The zip goes at the end of sys.path, as /var/task is on the runtime's: its `starter` package
    comes from it, while `s3worker` stays this checkout's (the zip's vendored copy is the same
    file, and tests/test_lambda_build.py imports the zip on its own).
    """
    path = Path(tempfile.mkdtemp(prefix="s3worker-lambda-")) / "lambda.zip"
    path.write_bytes(lambda_zip())
    sys.path.append(str(path))
    return importlib.import_module("start_worker")


class _Context:
    aws_request_id = "embedded"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class Invocation:
    function: str
    event: Json
    result: Json | None = None
    error: str | None = None


@dataclass
class LambdaBridge:
    """Plays the Lambda runtime for the start function, in this process."""

    endpoint: str
    module: ModuleType = field(default_factory=load_start_worker)
    invocations: list[Invocation] = field(default_factory=list)
    _runtimes: dict[str, Any] = field(default_factory=dict)
    _queue: queue.Queue[tuple[str, dict[str, str], Json] | None] = field(
        default_factory=queue.Queue
    )
    _idle: threading.Condition = field(default_factory=threading.Condition)
    _pending: int = 0
    # One warm container runs one invocation at a time (the demo's reconciler and the
    # rule's events share it).
    _container: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, function: str, env: dict[str, str], event: Json) -> Json:
        """A synchronous invocation (CloudFormation's custom resources)."""
        if "ResponseURL" in event:  # moto points it at host.docker.internal
            parts, target = urlsplit(event["ResponseURL"]), urlsplit(self.endpoint)
            event["ResponseURL"] = urlunsplit(
                (target.scheme, target.netloc, parts.path, parts.query, "")
            )
        record = Invocation(function, event)
        self.invocations.append(record)
        with self._container:
            runtime = self._runtime(function, env)
            try:
                record.result = runtime.handle(event, _Context())
            except Exception as exc:
                record.error = repr(exc)
                raise
        return record.result or {}

    def invoke_async(self, function: str, env: dict[str, str], event: Json) -> None:
        """An asynchronous invocation (EventBridge's): queued, run one at a time."""
        with self._idle:
            self._pending += 1
        self._queue.put((function, env, event))

    def wait_idle(self, timeout: float = 60) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _runtime(self, function: str, env: dict[str, str]) -> Any:
        if function not in self._runtimes:  # one warm container per function
            # The Lambda runtime sets AWS_REGION and AWS_DEFAULT_REGION for the function.
            region = env.get("AWS_REGION", REGION)
            self._runtimes[function] = self.module.Runtime(
                env=env,
                ec2_client=boto3.client("ec2", endpoint_url=self.endpoint, region_name=region),
                sqs_client=boto3.client("sqs", endpoint_url=self.endpoint, region_name=region),
            )
        return self._runtimes[function]

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self.invoke(*item)
            except Exception as exc:  # recorded on the invocation; EventBridge would retry
                logging.getLogger("demo").debug("lambda invocation failed: %r", exc)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    @contextmanager
    def installed(self) -> Iterator[LambdaBridge]:
        """Patch moto's Lambda invoke and EventBridge's Lambda targets to come here."""
        from moto.awslambda.models import LambdaFunction, lambda_backends
        from moto.events.models import Rule
        from moto.utilities.arns import parse_arn

        bridge = self
        original_invoke = LambdaFunction.invoke
        original_send = Rule.send_to_targets
        lock = threading.Lock()

        def env_of(function: Any) -> dict[str, str]:
            # A real runtime's environment holds strings; moto keeps template Numbers as int.
            return {k: str(v) for k, v in function.environment_vars.items()}

        def invoke(function: Any, body: str, _request: Any, _response: Any) -> str:
            return json.dumps(
                bridge.invoke(function.function_name, env_of(function), json.loads(body))
            )

        def send_to_targets(rule: Any, event: Json, transform_input: bool = True) -> None:
            if rule.scheduled_expression:
                # moto treats a schedule rule's missing pattern as "match all": it is not.
                return
            targets = list(rule.targets)
            lambdas = [t for t in targets if parse_arn(t["Arn"]).service == "lambda"]
            with lock:  # moto serves requests on threads; the rule object is shared
                rule.targets = [t for t in targets if t not in lambdas]
                try:
                    original_send(rule, event, transform_input)  # type: ignore[arg-type]
                finally:
                    rule.targets = targets
            if not lambdas or not rule.event_pattern.matches_event(event):
                return
            for target in lambdas:
                name = target["Arn"].split(":function:")[-1].split(":")[0]
                function = lambda_backends[rule.account_id][rule.region_name].get_function(name)
                bridge.invoke_async(name, env_of(function), json.loads(json.dumps(event)))

        setattr(LambdaFunction, "invoke", invoke)  # noqa: B010 (a patch, on purpose)
        setattr(Rule, "send_to_targets", send_to_targets)  # noqa: B010
        worker = threading.Thread(target=self._serve, name="lambda-bridge", daemon=True)
        worker.start()
        try:
            yield self
        finally:
            self._queue.put(None)
            worker.join(timeout=10)
            setattr(LambdaFunction, "invoke", original_invoke)  # noqa: B010
            setattr(Rule, "send_to_targets", original_send)  # noqa: B010


class EmbeddedAws:
    """moto's server on a free local port, with every client in this process pointed at it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._saved_env: dict[str, str | None] = {}

    def env(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def __enter__(self) -> EmbeddedAws:
        quiet_emulator()
        harness_session()
        for k, v in self.env().items():
            self._saved_env[k] = os.environ.get(k)
            os.environ[k] = v
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def harness_session(region: str = REGION) -> None:
    """The harness's own boto3 clients (deploying, uploading, asserting) use this region.

    Set on boto3's default session, never in the environment: the product's processes must
    find their region where they would on AWS (the env file; the Lambda runtime's variables).
    """
    boto3.setup_default_session(region_name=region)


def template_env_block(user_data: str) -> dict[str, str]:
    """The variables of the env file in a launch template's user data script."""
    block = user_data.split(ENV_FILE_START, 1)[1].split("\nEOF", 1)[0]
    pairs = (line.strip().partition("=") for line in block.splitlines() if "=" in line)
    return {k: v for k, _, v in pairs}


def template_worker_env(region: str = REGION) -> dict[str, str]:
    """The env file's entries that do not name a stack resource, straight from the template.

    For harnesses that run the daemon without deploying the stack (most tests): the AWS_*
    settings a worker gets come from here, `${AWS::Region}` rendered as CloudFormation would.
    """
    template = cfn_yaml.load(str(TEMPLATE))
    data = template["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    text = str(data["UserData"]["Fn::Base64"]["Fn::Sub"]).replace("${AWS::Region}", region)
    return {k: v for k, v in template_env_block(text).items() if "${" not in v}


def daemon_env(env_file: dict[str, str], endpoint: str, **extra: str) -> dict[str, str]:
    """A worker process's environment: the env file, what stands in for AWS, and `extra`
    (harness plumbing such as the local IMDS and notify socket); no AWS_/S3WORKER_ variable
    of the calling shell leaks in."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3WORKER_"))}
    return {**base, **env_file, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, **extra}


def quiet_emulator() -> None:
    """moto narrates every request and every unsupported resource; the demo says what matters."""
    for name in ("werkzeug", "moto", "botocore.credentials"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"moto\..*")
    # moto asks Docker which host its custom-resource callbacks should name, and prints a
    # "WARNING" when there is no Docker; the bridge rewrites that URL anyway (`invoke`).
    import moto.settings

    setattr(moto.settings, "moto_server_host", lambda: "http://host.docker.internal")  # noqa: B010


def lambda_zip() -> bytes:
    """The start Lambda's deployment zip, built as `make package` builds it (lambda/build.py)."""
    spec = importlib.util.spec_from_file_location("s3worker_lambda_build", LAMBDA_BUILD)
    assert spec
    assert spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    content: bytes = build.build()
    return content


def packaged_template(bucket: str, key: str) -> str:
    """What `aws cloudformation package` does to the template: the Code path -> S3."""
    template = cfn_yaml.load(str(TEMPLATE))  # CloudFormation YAML, short-form tags included
    function = template["Resources"]["StartWorkerFunction"]["Properties"]
    function["Code"] = {"S3Bucket": bucket, "S3Key": key}
    return json.dumps(template)


def deploy_stack(name: str, params: dict[str, str]) -> dict[str, str]:
    """Upload the artifacts, create the stack from the packaged template, return its outputs."""
    s3, cfn = boto3.client("s3"), boto3.client("cloudformation")
    artifacts = f"{name}-artifacts"
    s3.create_bucket(Bucket=artifacts)
    s3.put_object(Bucket=artifacts, Key="lambda/start_worker.zip", Body=lambda_zip())
    s3.put_object(Bucket=artifacts, Key="releases/s3worker-demo.tar.gz", Body=b"bundle")
    params = {"ArtifactBucket": artifacts, "ArtifactKey": "releases/s3worker-demo.tar.gz", **params}
    cfn.create_stack(
        StackName=name,
        TemplateBody=packaged_template(artifacts, "lambda/start_worker.zip"),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    # The custom resource completes on moto's thread: wait for the stack, with a deadline.
    deadline = time.monotonic() + 120
    while (stack := cfn.describe_stacks(StackName=name)["Stacks"][0])["StackStatus"].endswith(
        "_IN_PROGRESS"
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {name} still {stack['StackStatus']}")
        time.sleep(0.1)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(
            f"stack {name} is {stack['StackStatus']}: {stack.get('StackStatusReason')}"
        )
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def enable_eventbridge(bucket: str) -> None:
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )


def worker_env_file(launch_template_id: str) -> dict[str, str]:
    """The /etc/s3worker/s3worker.env the launch template's user data writes at boot."""
    data = boto3.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=launch_template_id, Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    return template_env_block(base64.b64decode(data["UserData"]).decode())


class FakeImds:
    """The instance metadata service for one instance, IMDSv2 only (tokens required): its id
    and its region (`placement/`). `notify` serves a Spot interruption notice (or a rebalance
    recommendation) from then on, as EC2 does mid-run; `served` lists the paths answered 200."""

    def __init__(
        self,
        instance_id: str,
        region: str = REGION,
        metadata: Mapping[str, str] | None = None,
        address: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        """`metadata`: more paths under /latest/meta-data/ (tags/instance/..., iam/...)."""
        token = secrets.token_hex(8)
        self.requests: list[str] = []
        self.served: list[str] = []
        self._answered = threading.Condition()  # notified after each 200 (`wait_served`)
        requests, served, answered = self.requests, self.served, self._answered
        self.values = values = {
            "instance-id": instance_id,
            "placement/region": region,
            "placement/availability-zone": f"{region}a",
            **(metadata or {}),
        }

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_PUT(self) -> None:
                requests.append(f"PUT {self.path}")
                ok = self.path == "/latest/api/token" and bool(
                    self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
                )
                self._reply(200 if ok else 400, token if ok else "")

            def do_GET(self) -> None:
                requests.append(f"GET {self.path}")
                if self.headers.get("X-aws-ec2-metadata-token") != token:
                    self._reply(401, "")  # IMDSv1 is disabled on the stack's instances
                elif (path := self.path.removeprefix("/latest/meta-data/").rstrip("/")) in values:
                    self._reply(200, values[path])
                    with answered:
                        served.append(path)
                        answered.notify_all()
                else:
                    self._reply(404, "")

            def _reply(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(address, Handler)
        self.url = f"http://{address[0]}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def notify(self, action: str, seconds: float) -> str:
        """A Spot interruption notice: `action` (terminate, stop, hibernate) in `seconds`, as
        `spot/instance-action` says it; or, for action "rebalance", a rebalance recommendation
        (`events/recommendations/rebalance`). Returns the path now served."""
        now = datetime.now(UTC)
        if action == "rebalance":
            path, doc = "events/recommendations/rebalance", {"noticeTime": _imds_time(now)}
        else:
            when = now + timedelta(seconds=seconds)
            path, doc = "spot/instance-action", {"action": action, "time": _imds_time(when)}
        self.values[path] = json.dumps(doc)
        return path

    def wait_served(self, path: str, timeout: float) -> bool:
        """Block until `path` has been answered 200 (a notice read by the daemon)."""
        with self._answered:
            return self._answered.wait_for(lambda: path in self.served, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _imds_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def pool_instances(pool_tag: str) -> list[Any]:
    key, _, value = pool_tag.partition("=")
    resp = boto3.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{key}", "Values": [value]}]
    )
    return [i for r in resp["Reservations"] for i in r["Instances"]]
