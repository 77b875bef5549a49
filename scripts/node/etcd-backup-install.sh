#!/usr/bin/env bash
# Install the etcd snapshot timer on a control plane: etcdctl and etcdutl from
# the pinned release tarball (sha256-checked), the snapshot script from stdin
# (scripts/node/etcd-snapshot.sh), its settings, and a systemd service + timer.
#
# Inputs (environment): ETCD_VERSION, ETCD_RELEASE_URL, ETCD_SHA256_AMD64,
# ETCD_SHA256_ARM64, SCHEDULE (OnCalendar), KEEP, SNAPSHOT_DIR, NFS_SERVER and
# NFS_PATH (both empty: no NFS copy). Stdin: the snapshot script.
set -euo pipefail
SCRIPT_NAME=etcd-backup-install
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ETCD_VERSION:?}" "${ETCD_RELEASE_URL:?}" "${SCHEDULE:?}" "${KEEP:?}" "${SNAPSHOT_DIR:?}"
NFS_SERVER=${NFS_SERVER:-} NFS_PATH=${NFS_PATH:-}
UNIT=kserve-etcd-snapshot
RUNNER=/usr/local/sbin/$UNIT
CONF=/etc/kserve-cluster/etcd-backup.env

[ -f /etc/kubernetes/manifests/etcd.yaml ] || die "no /etc/kubernetes/manifests/etcd.yaml: this is not a kubeadm control plane with stacked etcd."
if ! err=$(systemd-analyze calendar -- "$SCHEDULE" 2>&1 >/dev/null); then
  die "backup.schedule '$SCHEDULE' is refused by this node's systemd ($err). Fix it in the stack and re-run pulumi up."
fi

arch=$(dpkg --print-architecture)
case "$arch" in
  amd64) want=${ETCD_SHA256_AMD64:?} ;;
  arm64) want=${ETCD_SHA256_ARM64:?} ;;
  *) die "no pinned etcd release for architecture $arch (amd64 and arm64 only)." ;;
esac
if "/usr/local/bin/etcdctl" version 2>/dev/null | grep -qx "etcdctl version: $ETCD_VERSION" \
   && "/usr/local/bin/etcdutl" version 2>/dev/null | grep -qx "etcdutl version: $ETCD_VERSION"; then
  log "etcdctl and etcdutl $ETCD_VERSION already installed"
else
  work=$(mktemp -d)
  trap 'rm -rf -- "$work"' EXIT
  base="etcd-v${ETCD_VERSION}-linux-${arch}"
  log "downloading $ETCD_RELEASE_URL/v$ETCD_VERSION/$base.tar.gz"
  curl -fsSL --retry 5 --retry-delay 3 -o "$work/$base.tar.gz" \
    "$ETCD_RELEASE_URL/v$ETCD_VERSION/$base.tar.gz" \
    || die "could not download the etcd release: check that the node reaches github.com."
  printf '%s  %s\n' "$want" "$work/$base.tar.gz" | sha256sum -c --quiet - \
    || die "the etcd release tarball does not match its pinned sha256: not installed."
  tar -xzf "$work/$base.tar.gz" -C "$work" "$base/etcdctl" "$base/etcdutl"
  install -m 0755 "$work/$base/etcdctl" "$work/$base/etcdutl" /usr/local/bin/
  log "installed etcdctl and etcdutl $ETCD_VERSION in /usr/local/bin"
fi

if [ -n "$NFS_SERVER" ] && ! command -v mount.nfs >/dev/null; then
  apt_get update
  apt_get install --no-install-recommends nfs-common
fi

cat | write_if_changed "$RUNNER" 0700 || true
install -d -m 0700 "$SNAPSHOT_DIR"
{
  printf '# written by kserve-cluster (etcd-backup-install.sh); change the stack, not this file\n'
  printf 'KEEP=%q\nSNAPSHOT_DIR=%q\nNFS_SERVER=%q\nNFS_PATH=%q\n' "$KEEP" "$SNAPSHOT_DIR" "$NFS_SERVER" "$NFS_PATH"
} | write_if_changed "$CONF" 0600 || true
write_if_changed "/etc/systemd/system/$UNIT.service" 0644 <<UNIT_FILE || true
[Unit]
Description=kserve-cluster: etcd snapshot (kept in $SNAPSHOT_DIR)
After=kubelet.service

[Service]
Type=oneshot
ExecStart=$RUNNER
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
UNIT_FILE
write_if_changed "/etc/systemd/system/$UNIT.timer" 0644 <<UNIT_FILE || true
[Unit]
Description=kserve-cluster: etcd snapshots on the schedule backup.schedule

[Timer]
OnCalendar=$SCHEDULE
Persistent=true
RandomizedDelaySec=60

[Install]
WantedBy=timers.target
UNIT_FILE
systemctl daemon-reload
systemctl enable "$UNIT.timer" >/dev/null 2>&1
systemctl restart "$UNIT.timer"
log "timer $UNIT.timer: $(systemctl show -p NextElapseUSecRealtime --value "$UNIT.timer" 2>/dev/null || true)"
