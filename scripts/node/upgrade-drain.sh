#!/usr/bin/env bash
# On the control plane, for one node of an upgrade:
#   ACTION=drain:    cordon and drain it (PodDisruptionBudgets respected: kubectl
#                    drain evicts), at most DRAIN_TIMEOUT. A drain that fails
#                    uncordons the node again and stops the run.
#   ACTION=uncordon: wait until it is Ready (READY_TIMEOUT_SECONDS), then uncordon it.
# Both skip a node the upgrade did not drain (a marker file on the control plane),
# and drain skips a node whose kubelet already runs TARGET_VERSION.
#
# Inputs (environment): ACTION, NODE_NAME, TARGET_VERSION, DRAIN_TIMEOUT,
#   READY_TIMEOUT_SECONDS.
set -euo pipefail
SCRIPT_NAME=upgrade-drain
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ACTION:?}" "${NODE_NAME:?}" "${TARGET_VERSION:?}" "${DRAIN_TIMEOUT:=10m}" "${READY_TIMEOUT_SECONDS:=600}"
marker_dir=/var/lib/kserve-cluster/upgrade/drained
marker=$marker_dir/$NODE_NAME

case "$ACTION" in
  drain)
    version=$(kubectl_admin get node "$NODE_NAME" --no-headers \
      -o 'custom-columns=VERSION:.status.nodeInfo.kubeletVersion')
    if [ "${version#v}" = "$TARGET_VERSION" ] && [ ! -e "$marker" ]; then
      log "${NODE_NAME}'s kubelet already runs ${TARGET_VERSION}: not drained"
      exit 0
    fi
    install -d -m 0700 "$marker_dir"
    echo "$TARGET_VERSION" >"$marker"
    log "draining ${NODE_NAME} (timeout ${DRAIN_TIMEOUT})"
    if ! kubectl_admin drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data \
        --timeout "$DRAIN_TIMEOUT"; then
      kubectl_admin uncordon "$NODE_NAME" || true
      rm -f "$marker"
      die "could not drain ${NODE_NAME} within ${DRAIN_TIMEOUT} (a PodDisruptionBudget that allows no eviction, or a pod that does not stop); it is uncordoned again and the upgrade stopped here. See 'kubectl get pdb -A', fix it or raise upgrade.drainTimeout, then re-run pulumi up: finished nodes are skipped."
    fi
    ;;
  uncordon)
    if [ ! -e "$marker" ]; then
      log "${NODE_NAME} was not drained by the upgrade: nothing to uncordon"
      exit 0
    fi
    log "waiting until ${NODE_NAME} is Ready"
    kubectl_admin wait --for=condition=Ready "node/${NODE_NAME}" --timeout "${READY_TIMEOUT_SECONDS}s" >/dev/null \
      || die "${NODE_NAME} is not Ready ${READY_TIMEOUT_SECONDS}s after its kubelet restarted; it stays cordoned. Check 'journalctl -u kubelet' on it, then re-run pulumi up."
    kubectl_admin uncordon "$NODE_NAME"
    rm -f "$marker"
    ;;
  *) die "unknown ACTION '${ACTION}' (drain or uncordon)" ;;
esac
