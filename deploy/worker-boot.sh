#!/bin/bash
# s3worker worker boot, shipped in the release bundle next to wheelhouse/ and s3worker.service.
# Run as root by the launch template's user data after it wrote /etc/s3worker/s3worker.env and
# the boot settings file given as $1 (ARTIFACT_URL, SCRATCH_DEVICE, SCRATCH_DIR). Idempotent.
# Exits non-zero on any failure; the user data then reports the failure and powers off.
set -euo pipefail

BOOT_ENV=${1:-/etc/s3worker/boot.env}
# shellcheck source=/dev/null
. "$BOOT_ENV"
BUNDLE_DIR=$(cd "$(dirname "$0")" && pwd)
VENV=/opt/s3worker/venv
FS_LABEL=s3w-scratch
SCRATCH_DIR=${SCRATCH_DIR:-/var/lib/s3worker}

log() { echo "s3worker-boot: $*"; }

# The block device behind the launch template's /dev/sdb mapping. Nitro instances expose EBS as
# NVMe (/dev/nvme1n1, in no guaranteed order); AL2023's amazon-ec2-utils udev rules add the
# /dev/sdb symlink from the volume's NVMe vendor data, and ebsnvme-id reads that data directly.
scratch_device() {
    local wanted=$1 short=${1#/dev/} dev
    for _ in $(seq 1 60); do
        if command -v udevadm >/dev/null; then udevadm settle || true; fi
        for dev in "$wanted" "/dev/xvd${short#sd}"; do
            if [ -b "$dev" ]; then readlink -f "$dev"; return 0; fi
        done
        for dev in /dev/nvme*n1; do
            [ -b "$dev" ] || continue
            if ebsnvme-id -b "$dev" 2>/dev/null | grep -qx "/dev/$short\|$short"; then
                echo "$dev"; return 0
            fi
        done
        sleep 2
    done
    return 1
}

mount_scratch() {
    local dev
    dev=$(scratch_device "$SCRATCH_DEVICE") || { log "no block device for $SCRATCH_DEVICE"; return 1; }
    if ! blkid "$dev" >/dev/null 2>&1; then
        log "first boot: formatting $dev"
        mkfs.xfs -q -L "$FS_LABEL" "$dev"
    fi
    install -d -m 0750 "$SCRATCH_DIR"
    if ! grep -q "LABEL=$FS_LABEL " /etc/fstab; then
        # nofail: a missing volume must not drop the machine into emergency mode (unreachable
        # and billed); the unit's RequiresMountsFor= keeps the daemon off the root disk instead.
        echo "LABEL=$FS_LABEL $SCRATCH_DIR xfs defaults,noatime,nofail,x-systemd.device-timeout=60s 0 2" >>/etc/fstab
        systemctl daemon-reload
    fi
    mountpoint -q "$SCRATCH_DIR" || mount "$SCRATCH_DIR"
    # With nofail, mount exits 0 when it cannot find the label (no udev link yet, nothing
    # found by a scan): the daemon would then run on the root disk. And a label is not unique:
    # another attached volume carrying it (a restored snapshot of a worker's scratch) is
    # mounted just as well. Only a mount of this device counts.
    local source
    source=$(findmnt -n -o SOURCE --mountpoint "$SCRATCH_DIR") || source=
    if [ -z "$source" ] || [ "$(readlink -f "$source")" != "$dev" ]; then
        log "$SCRATCH_DIR is not mounted from $dev (LABEL=$FS_LABEL; mounted: ${source:-nothing})"
        return 1
    fi
}

create_user() {
    if ! id s3worker >/dev/null 2>&1; then
        useradd --system --user-group --home-dir "$SCRATCH_DIR" --no-create-home \
            --shell /sbin/nologin s3worker
    fi
    chown s3worker:s3worker "$SCRATCH_DIR"
    chmod 0750 "$SCRATCH_DIR"
}

install_daemon() {
    # The distro's Python 3.11 (the wheelhouse is built for it); no public package index needed.
    command -v python3.11 >/dev/null || dnf install -y -q python3.11 python3.11-pip
    rm -rf "$VENV"
    python3.11 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --no-index --find-links "$BUNDLE_DIR/wheelhouse" s3worker
    "$VENV/bin/s3worker" --help >/dev/null
}

install_unit() {
    chmod 0600 /etc/s3worker/s3worker.env
    install -m 0644 "$BUNDLE_DIR/s3worker.service" /etc/systemd/system/s3worker.service
    systemctl daemon-reload
    # Type=notify: this returns once the daemon sent READY=1, and fails if it does not.
    systemctl enable --now s3worker.service
    systemctl is-active --quiet s3worker.service
}

log "bundle $ARTIFACT_URL"
mount_scratch
create_user
install_daemon
install_unit
log "s3worker is running"
