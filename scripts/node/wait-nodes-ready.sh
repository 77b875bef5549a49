#!/usr/bin/env bash
# Runs on the control plane after the CNI is installed: wait until every
# expected node is registered and Ready.
#
# Inputs (environment): NODE_NAMES (space-separated), READY_TIMEOUT_SECONDS.
set -euo pipefail
SCRIPT_NAME=wait-nodes-ready
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_NAMES:?}" "${READY_TIMEOUT_SECONDS:=900}"
deadline=$(( $(date +%s) + READY_TIMEOUT_SECONDS ))
for node in $NODE_NAMES; do
  while ! kubectl_admin wait --for=condition=Ready "node/${node}" --timeout=10s >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      kubectl_admin get nodes -o wide || true
      die "node ${node} is not Ready after ${READY_TIMEOUT_SECONDS}s; check the calico-node pod on it (kubectl -n calico-system get pods -o wide) and 'journalctl -u kubelet'."
    fi
    sleep 5
  done
  log "node ${node} is Ready"
done
