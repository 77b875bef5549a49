#!/usr/bin/env bash
# Take the virtual IP's services off a control plane that leaves the cluster:
# keepalived first (the address moves to another control plane at once), then
# haproxy, and the files ha-endpoint.sh wrote. The packages stay installed.
set -euo pipefail
SCRIPT_NAME=ha-endpoint-remove
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for service in keepalived haproxy; do
  systemctl disable --now "$service" >/dev/null 2>&1 || true
done
rm -f /etc/keepalived/keepalived.conf /etc/keepalived/kserve-check-haproxy.sh
log "keepalived and haproxy stopped; this node no longer serves the virtual IP"
