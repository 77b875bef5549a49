#!/usr/bin/env bash
# Runs on the control plane for one worker.
#   ACTION=wait:   wait until the worker's Node object is registered.
#   ACTION=remove: drain the worker and delete its Node object (worker removed
#                  from the stack). Never fails the destroy: a node that is
#                  already gone, or pods that cannot be evicted in time, only warn.
#
# Inputs (environment): ACTION, NODE_NAME, DRAIN_TIMEOUT.
set -euo pipefail
SCRIPT_NAME=node-membership
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ACTION:?}" "${NODE_NAME:?}" "${DRAIN_TIMEOUT:=120s}"
case "$ACTION" in
  wait)
    for _ in $(seq 1 60); do
      if kubectl_admin get node "$NODE_NAME" >/dev/null 2>&1; then
        log "node ${NODE_NAME} is registered"
        exit 0
      fi
      sleep 5
    done
    die "node ${NODE_NAME} did not register with the API server within 5 minutes; check 'journalctl -u kubelet' on it."
    ;;
  remove)
    if ! kubectl_admin get node "$NODE_NAME" >/dev/null 2>&1; then
      log "node ${NODE_NAME} is not in the cluster: nothing to drain"
      exit 0
    fi
    log "draining ${NODE_NAME} (timeout ${DRAIN_TIMEOUT})"
    kubectl_admin drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data \
      --timeout "$DRAIN_TIMEOUT" || log "WARNING: drain did not finish; deleting the node anyway"
    kubectl_admin delete node "$NODE_NAME" --ignore-not-found
    ;;
  *) die "unknown ACTION '${ACTION}' (wait or remove)" ;;
esac
