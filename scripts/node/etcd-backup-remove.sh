#!/usr/bin/env bash
# Remove the etcd snapshot timer, its script, settings and the etcd client tools.
# The snapshots themselves stay in their directory (they are the backup).
set -euo pipefail
SCRIPT_NAME=etcd-backup-remove
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UNIT=kserve-etcd-snapshot
systemctl disable --now "$UNIT.timer" >/dev/null 2>&1 || true
rm -f "/etc/systemd/system/$UNIT.timer" "/etc/systemd/system/$UNIT.service" \
      "/usr/local/sbin/$UNIT" /etc/kserve-cluster/etcd-backup.env \
      /usr/local/bin/etcdctl /usr/local/bin/etcdutl
systemctl daemon-reload || true
log "removed the etcd snapshot timer; snapshots already taken are left in place"
