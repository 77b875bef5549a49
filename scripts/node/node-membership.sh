#!/usr/bin/env bash
# Runs on the control plane for one worker.
#   ACTION=wait:   wait until the worker's Node object is registered.
#   ACTION=remove: drain the worker and delete its Node object (worker removed
#                  from the stack). Never fails the destroy: a node that is
#                  already gone, or pods that cannot be evicted in time, only warn.
#   ACTION=remove-control-plane: the same for a control plane that leaves, and
#                  before its Node goes, an etcd snapshot is taken here and its
#                  etcd member is removed from here (a healthy member), so it no
#                  longer counts for quorum even when the node itself cannot be
#                  reached for its kubeadm reset.
#
# Inputs (environment): ACTION, NODE_NAME, DRAIN_TIMEOUT.
set -euo pipefail
SCRIPT_NAME=node-membership
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ACTION:?}" "${NODE_NAME:?}" "${DRAIN_TIMEOUT:=120s}"
ETCDCTL=${ETCDCTL:-/usr/local/bin/etcdctl}
ETCD_PKI=${ETCD_PKI:-/etc/kubernetes/pki/etcd}

# kubeadm names a stacked etcd member after its node. control-plane-change.sh has
# checked that the others keep quorum before any delete ran.
# kubeadm's etcd listens on 127.0.0.1 and on the address etcd.yaml advertises
# (the one the SSH lab's members have, as they share one network): that one first.
advertised=$(sed -n 's/^ *- --advertise-client-urls=//p' /etc/kubernetes/manifests/etcd.yaml 2>/dev/null | head -n1 || true)
ETCD_ENDPOINT=${ETCD_ENDPOINT:-${advertised%%,*}}
ETCD_ENDPOINT=${ETCD_ENDPOINT:-https://127.0.0.1:2379}
etcd() {
  ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ETCD_ENDPOINT" --cacert "$ETCD_PKI/ca.crt" \
    --cert "$ETCD_PKI/healthcheck-client.crt" --key "$ETCD_PKI/healthcheck-client.key" "$@"
}
remove_etcd_member() {
  local name=$1 list id
  list=$(etcd member list) \
    || die "etcdctl member list failed here, so ${name}'s etcd member cannot be removed; check etcd on this node (crictl ps --name etcd), then re-run pulumi up."
  id=$(awk -F', ' -v n="$name" '$3 == n {print $1}' <<<"$list")
  if [ -z "$id" ]; then
    log "${name} is not an etcd member (any more)"
    return 0
  fi
  log "removing ${name}'s etcd member ${id}"
  # etcd refuses a reconfiguration ("unhealthy cluster") until its members have
  # been connected for 5 s: retried for 2 minutes, as kubeadm retries its calls.
  local out attempt
  for attempt in $(seq 1 120); do
    if out=$(etcd member remove "$id" 2>&1); then return 0; fi
    grep -q "unhealthy cluster" <<<"$out" || break
    [ "$attempt" -lt 120 ] && sleep 1
  done
  printf '%s\n' "$out" >&2
  die "etcdctl member remove ${id} (${name}) failed (output above); check etcdctl endpoint health --cluster here, then re-run pulumi up."
}
# The snapshot timer's own program (etcd-backup-install.sh installs it on every
# control plane): every change of the control planes, a removal as a join, comes
# after a snapshot; none taken, nothing removed.
SNAPSHOT=${SNAPSHOT:-/usr/local/sbin/kserve-etcd-snapshot}
snapshot_before_removal() {
  local name=$1
  [ -x "$SNAPSHOT" ] \
    || die "${SNAPSHOT} is missing here, so no etcd snapshot can be taken before ${name}'s etcd member is removed. Re-run pulumi up with ${name} still in the stack (etcd-backup-install.sh installs it), then remove it."
  log "etcd snapshot before ${name}'s etcd member is removed"
  "$SNAPSHOT" >&2 \
    || die "the etcd snapshot before removing ${name} failed (output above); nothing was removed. Check etcd here (etcdctl endpoint health --cluster), then re-run pulumi up."
}
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
  remove|remove-control-plane)
    if kubectl_admin get node "$NODE_NAME" >/dev/null 2>&1; then
      log "draining ${NODE_NAME} (timeout ${DRAIN_TIMEOUT})"
      kubectl_admin drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data \
        --timeout "$DRAIN_TIMEOUT" || log "WARNING: drain did not finish; deleting the node anyway"
    else
      log "node ${NODE_NAME} is not in the cluster: nothing to drain"
    fi
    if [ "$ACTION" = remove-control-plane ]; then
      snapshot_before_removal "$NODE_NAME"
      remove_etcd_member "$NODE_NAME"
    fi
    kubectl_admin delete node "$NODE_NAME" --ignore-not-found
    ;;
  *) die "unknown ACTION '${ACTION}' (wait, remove or remove-control-plane)" ;;
esac
