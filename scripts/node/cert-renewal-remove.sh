#!/usr/bin/env bash
# Remove what cert-renewal.sh installed: the timer, its service and the renewal
# program. Safe to run again, and on a node where they never were.
set -euo pipefail
SCRIPT_NAME=cert-renewal-remove
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

systemctl disable --now kserve-cert-renewal.timer 2>/dev/null || true
rm -f /etc/systemd/system/kserve-cert-renewal.timer /etc/systemd/system/kserve-cert-renewal.service \
  /usr/local/sbin/kserve-cert-renew
systemctl daemon-reload 2>/dev/null || true
log "certificate renewal timer removed"
