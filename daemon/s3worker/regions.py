"""Which AWS region a client uses, from the variables AWS documents (pure; no AWS calls).

The pinned botocore reads only `AWS_DEFAULT_REGION` (and the profile); `AWS_REGION` is what
the AWS CLI v2, the other SDKs and the Lambda runtime set, and what the worker's env file
writes. Both are honoured, `AWS_REGION` first, as the AWS CLI does:
https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-envvars.html
"""

from __future__ import annotations

import os
from collections.abc import Mapping

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
# Where IMDS is (botocore honours it too); unset on EC2, a local server in the tests and demo.
ENDPOINT_VARIABLE = "AWS_EC2_METADATA_SERVICE_ENDPOINT"


def configured_region(
    profile_region: str | None = None, env: Mapping[str, str] | None = None
) -> str | None:
    """The region the environment names, else the profile's (botocore's view), else None."""
    e = os.environ if env is None else env
    for name in REGION_VARIABLES:
        value = e.get(name, "").strip()
        if value:
            return value
    return (profile_region or "").strip() or None
