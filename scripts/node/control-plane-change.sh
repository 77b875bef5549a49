#!/usr/bin/env bash
# Runs on the first control plane whenever the stack's list of control planes
# changes, before Pulumi deletes anything (deletes come last in a pulumi up):
# refuses a change that removes more than one control plane at once, or one whose
# removal leaves fewer healthy etcd members than the new member count's quorum.
# Read-only.
#
# Inputs (environment): CONTROL_PLANES (the stack's control planes, space-separated).
set -euo pipefail
SCRIPT_NAME=control-plane-change
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${CONTROL_PLANES:?}"
ETCDCTL=${ETCDCTL:-/usr/local/bin/etcdctl}
ETCD_PKI=${ETCD_PKI:-/etc/kubernetes/pki/etcd}
# kubeadm's etcd listens on 127.0.0.1 and on the address etcd.yaml advertises
# (the one the SSH lab's members have, as they share one network): that one first.
advertised=$(sed -n 's/^ *- --advertise-client-urls=//p' /etc/kubernetes/manifests/etcd.yaml 2>/dev/null | head -n1 || true)
ETCD_ENDPOINT=${ETCD_ENDPOINT:-${advertised%%,*}}
ETCD_ENDPOINT=${ETCD_ENDPOINT:-https://127.0.0.1:2379}
etcdctl() {
  ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ETCD_ENDPOINT" --cacert "$ETCD_PKI/ca.crt" \
    --cert "$ETCD_PKI/healthcheck-client.crt" --key "$ETCD_PKI/healthcheck-client.key" "$@"
}

read -r -a wanted <<<"$CONTROL_PLANES"
mapfile -t present < <(kubectl_admin get nodes -l node-role.kubernetes.io/control-plane \
  -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
removed=()
for name in "${present[@]}"; do
  [ -n "$name" ] || continue
  keep=no
  for w in "${wanted[@]}"; do [ "$w" = "$name" ] && keep=yes; done
  [ "$keep" = yes ] || removed+=("$name")
done

if [ "${#removed[@]}" -eq 0 ]; then
  log "no control plane leaves the cluster (${CONTROL_PLANES})"
  exit 0
fi
if [ "${#removed[@]}" -gt 1 ]; then
  die "the stack removes ${#removed[@]} control planes at once (${removed[*]}); each takes an etcd member with it, and two at once can lose quorum. Nothing was changed. Fix: put all but one back into kserve-cluster:nodes, run pulumi up, then remove the next one in another run (docs/operations.md, 'Remove a control plane')."
fi
leaving=${removed[0]}

# `member list`: ID, status, name, peer URLs, client URLs, learner.
mapfile -t members < <(etcdctl member list 2>/dev/null | sed 's/, /,/g')
[ "${#members[@]}" -gt 0 ] || die "etcdctl member list failed on this control plane, so removing ${leaving} cannot be checked against etcd's quorum. Fix: check etcd here (crictl ps --name etcd), or put ${leaving} back into the stack."
health=$(etcdctl endpoint health --cluster 2>&1 || true)
total=${#members[@]} healthy_after=0 is_member=no
for line in "${members[@]}"; do
  IFS=, read -r _ _ name _ client _ <<<"$line"
  if [ "$name" = "$leaving" ]; then is_member=yes; continue; fi
  if grep -qF "${client} is healthy" <<<"$health"; then healthy_after=$((healthy_after + 1)); fi
done
if [ "$is_member" = no ]; then
  log "${leaving} leaves; it is no longer an etcd member (${total} members)"
  exit 0
fi
after=$((total - 1))
quorum=$((after / 2 + 1))
if [ "$healthy_after" -lt "$quorum" ]; then
  die "removing ${leaving} leaves ${after} etcd members of which ${healthy_after} are healthy; they need ${quorum} for quorum. Nothing was changed. Fix: bring the unhealthy control planes back first (etcdctl endpoint health --cluster), or put ${leaving} back into the stack."
fi
log "${leaving} leaves: ${healthy_after} healthy of the ${after} etcd members left (quorum ${quorum})"
