#!/usr/bin/env bash
# Take a node out of the cluster for good: kubeadm reset, then what reset
# leaves behind (CNI config, iptables/IPVS rules, kubeconfig copies, Calico state),
# the node-local volumes of local-path-provisioner (no cluster can mount them any
# more) and the files staged there for uploads into claims.
# Installed packages stay, so a later `pulumi up` is quick. Safe to run again.
#
# Inputs (environment): LOGIN_USER (whose ~/.kube/config is removed).
set -euo pipefail
SCRIPT_NAME=reset-node
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${LOGIN_USER:?}"

if command -v kubeadm >/dev/null 2>&1; then
  log "kubeadm reset"
  kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock 2>&1 | redact
fi
log "removing CNI config, Calico state and kubeconfig copies"
rm -rf /etc/cni/net.d /var/lib/calico /var/run/calico /var/lib/cni /etc/kubernetes/kubeadm-*.yaml \
  /etc/kubernetes/kserve-cluster-init.*
rm -f /root/.kube/config
home=$(getent passwd "$LOGIN_USER" | cut -d: -f6 || true)
if [ -n "$home" ]; then
  rm -f "$home/.kube/config"
  rm -rf "$home/.kserve-cluster"
fi
# local-path-provisioner's directory on every node (its manifest's nodePathMap).
rm -rf /opt/local-path-provisioner
log "flushing iptables rules left by kube-proxy and Calico"
for table in filter nat mangle raw; do
  iptables -t "$table" -F 2>/dev/null || true
  iptables -t "$table" -X 2>/dev/null || true
done
if command -v ipvsadm >/dev/null 2>&1; then
  ipvsadm --clear || true
fi
log "node reset"
