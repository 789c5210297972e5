"""The one place that builds the operator commands' boto3 clients, and explains AWS errors.

Unlike the daemon (one tenacity policy), the CLI uses botocore's own "standard" retries: a
person waits for one answer, and botocore already classifies throttling and 5xx. Profile,
credentials and `AWS_ENDPOINT_URL` (the emulator) are read by boto3 as usual; the region is
`--region`, else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's, else this instance's (on
EC2), because the pinned boto3 does not read `AWS_REGION` itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from botocore.utils import InstanceMetadataRegionFetcher

from s3worker.ops import OperatorError, UnreachableError
from s3worker.regions import ENDPOINT_VARIABLE, configured_region

ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "403",
    }
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class Aws:
    """One boto3 session (profile, region) and its clients, built on first use."""

    def __init__(
        self, profile: str | None = None, region: str | None = None, pool: int = 10
    ) -> None:
        with explained():
            self.session = boto3.Session(profile_name=profile)
            region = region or configured_region(self.session.region_name) or instance_region()
            if region:
                self.session = boto3.Session(profile_name=profile, region_name=region)
        self.config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=max(10, pool),
        )
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str:
        return self.session.region_name or "(no region)"

    def client(self, service: str) -> Any:
        if service not in self._clients:
            with explained():
                self._clients[service] = self._make(service, self.config)
        return self._clients[service]

    def single_try_client(self, service: str) -> Any:
        """A client that does not retry: for calls with a fallback, where a retry only waits."""
        config = self.config.merge(Config(retries={"total_max_attempts": 1}))
        with explained():
            return self._make(service, config)

    def _make(self, service: str, config: Config) -> Any:
        make: Any = self.session.client  # typed per service name; ours are plain strings
        return make(service, config=config)


def instance_region() -> str | None:
    """The instance's region when the command runs on EC2 (IMDSv2), else None, quickly."""
    endpoint = os.environ.get(ENDPOINT_VARIABLE)
    config = {"ec2_metadata_service_endpoint": endpoint} if endpoint else {}
    region: str | None = InstanceMetadataRegionFetcher(
        timeout=1, num_attempts=1, config=config
    ).retrieve_region()
    return region


@contextmanager
def explained() -> Iterator[None]:
    """Turn the AWS failures an operator can fix into one-line OperatorErrors."""
    try:
        yield
    except OperatorError:
        raise
    except ClientError as exc:
        raise OperatorError(explain_client_error(exc)) from exc
    except (NoCredentialsError, ProfileNotFound, NoRegionError) as exc:
        raise OperatorError(
            f"{exc} (set AWS_PROFILE/AWS_REGION or pass --profile/--region)"
        ) from exc
    except EndpointConnectionError as exc:
        raise UnreachableError(f"cannot reach AWS: {exc}; check the network, try again") from exc
    except BotoCoreError as exc:
        raise OperatorError(f"AWS client error: {exc}") from exc


def explain_client_error(exc: ClientError) -> str:
    code = error_code(exc)
    op = getattr(exc, "operation_name", "") or "request"
    message = exc.response.get("Error", {}).get("Message", "") or str(exc)
    if code in ACCESS_DENIED_CODES or http_status(exc) == 403:
        return f"access denied for {op}: {message} (check the credentials and their policy)"
    return f"{op} failed: {code}: {message}"
