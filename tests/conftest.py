"""Shared fixtures: one moto server over HTTP for the session, random resource names."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from demo.emulator import REGION, harness_session, template_worker_env

# What stands in for AWS: credentials and (in `aws`) the emulator's endpoint. The AWS_*
# settings a worker process gets are the ones the launch template's user data writes into its
# env file, read from deploy/cloudformation.yaml: the harness sets nothing the product does not.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    **{k: v for k, v in template_worker_env(REGION).items() if k.startswith("AWS_")},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The embedded AWS: a real HTTP server, so aiobotocore talks to it like to AWS."""
    harness_session()  # the tests' own boto3 clients; the product finds its region itself
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point every AWS client (boto3, aiobotocore, subprocesses) at the moto server."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    # No metadata service here: fail fast instead of waiting on 169.254.169.254.
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
    return moto_server


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "root" / "scratch"
    path.mkdir(parents=True)
    return path


def pytest_configure(config: pytest.Config) -> None:
    # Test processors live in tests/; worker processes must import them by module name.
    tests_dir = str(Path(__file__).parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (tests_dir, os.environ.get("PYTHONPATH", "")) if p
    )


@pytest.fixture(autouse=True, scope="session")
def _quiet_emulator_logs() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
