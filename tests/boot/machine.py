"""What turns the cached Debian tree into "an EC2 instance launched from the template".

Written into the per-run overlay before boot; each item stands in for a piece of EC2 that a
container lacks, and nothing else (the boot script, the unit and the env file are the product's):
- the launch template's user data, decoded from what moto's CloudFormation rendered, run once
  at boot by a unit as cloud-init's `scripts-user` runs it (AL2023 runs it from cloud-final);
- `aws`, a stand-in for the AWS CLI (bookworm's awscli 2.9 predates AWS_ENDPOINT_URL, added in
  2.13): `s3 cp` of the artifact downloads it for real from the endpoint (the bundle that
  `make package` built, uploaded to the stack's artifact bucket); `cloudformation
  signal-resource` and `cloudwatch put-metric-data` only record their arguments;
- /dev/sdb, a link to the scratch volume's kernel device (a loop device here, /dev/nvme1n1 on
  Nitro), made at boot by a tmpfiles rule where AL2023's amazon-ec2-utils udev rules make it
  (the container has no udev; udev would also make the /dev/disk/by-label link);
- AWS_ENDPOINT_URL as systemd's DefaultEnvironment: the one variable that points "AWS" at the
  emulator (credentials come from the IMDS, as on EC2).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

USER_DATA = "var/lib/cloud/instance/scripts/part-001"
AWS_CALLS = "var/log/aws-cli-calls.log"
USER_DATA_UNIT = "user-data.service"

_UNIT = f"""\
# Harness: runs the instance's user data once at boot, as cloud-init's scripts-user does.
[Unit]
Description=Instance user data (cloud-init scripts-user)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/{USER_DATA}
RemainAfterExit=yes
TimeoutSec=0
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""

_AWS_SHIM = f"""\
#!/bin/sh
# Harness stand-in for the AWS CLI: records every call (one line, arguments tab-separated).
printf '%s\\t' "$@" >>/{AWS_CALLS}; echo >>/{AWS_CALLS}
case "$1 $2" in
  "s3 cp")
    shift 2
    [ "$1" = --only-show-errors ] && shift
    exec curl -sfS -o "$2" "$AWS_ENDPOINT_URL/${{1#s3://}}" ;;
  "cloudformation signal-resource" | "cloudwatch put-metric-data") exit 0 ;;
  *) echo "aws (harness): not emulated: $*" >&2; exit 1 ;;
esac
"""


def rendered_user_data(launch_template_id: str) -> str:
    """The launch template's UserData as moto's CloudFormation rendered it, decoded."""
    data = boto3.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=launch_template_id, Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    return base64.b64decode(data["UserData"]).decode()


def provision(tree: Path, user_data: str, endpoint: str, scratch: str) -> None:
    """`scratch`: the block device (a loop device) that plays the template's /dev/sdb volume."""
    _write(tree / USER_DATA, user_data, 0o700)
    _write(tree / "etc/systemd/system" / USER_DATA_UNIT, _UNIT, 0o644)
    wants = tree / "etc/systemd/system/multi-user.target.wants" / USER_DATA_UNIT
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.symlink_to(f"/etc/systemd/system/{USER_DATA_UNIT}")
    _write(tree / "usr/local/bin/aws", _AWS_SHIM, 0o755)
    _write(
        tree / "etc/tmpfiles.d/ebs-sdb.conf",
        f"# Harness: what AL2023's amazon-ec2-utils udev rule does for the mapping.\n"
        f"L /dev/sdb - - - - {scratch}\n",
        0o644,
    )
    _write(
        tree / "etc/systemd/system.conf.d/aws-endpoint.conf",
        f"# Harness: the emulator stands in for AWS.\n[Manager]\n"
        f"DefaultEnvironment=AWS_ENDPOINT_URL={endpoint}\n",
        0o644,
    )


def aws_calls(tree: Path) -> list[list[str]]:
    try:
        text = (tree / AWS_CALLS).read_text()
    except FileNotFoundError:
        return []
    return [line.rstrip("\t").split("\t") for line in text.splitlines() if line]


def instance_metadata(instance_id: str) -> dict[str, str]:
    """IMDS paths (under /latest/meta-data/, besides id and placement) for a moto instance:
    its tags (the template sets InstanceMetadataTags) and its instance profile's credentials."""
    ec2 = boto3.client("ec2")
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instance = reservations[0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    role = "s3worker-boot-test-role"
    expires = (datetime.now(UTC) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    credentials = {
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": "ASIABOOTTEST",
        "SecretAccessKey": "boot-test",
        "Token": "boot-test",
        "Expiration": expires,
        "LastUpdated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {
        "tags/instance": "\n".join(tags),
        **{f"tags/instance/{k}": v for k, v in tags.items()},
        "iam/security-credentials": role,
        f"iam/security-credentials/{role}": json.dumps(credentials),
    }


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
