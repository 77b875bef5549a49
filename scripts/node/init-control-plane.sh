#!/usr/bin/env bash
# kubeadm init from the config on stdin (rendered by components/cluster/kubeadm_config.py).
# Guarded: on a node that is already a control plane it changes nothing.
#
# Inputs (environment): LOGIN_USER (gets a copy of the admin kubeconfig).
set -euo pipefail
SCRIPT_NAME=kubeadm-init
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${LOGIN_USER:?}"
config=/etc/kubernetes/kubeadm-init.yaml
mkdir -p /etc/kubernetes  # kubeadm keeps it 0755; our files in it are 0600
cat | write_if_changed "$config" 0600 || true

# An init of ours leaves `started` before it runs and `finished` once kubeadm init
# succeeded. admin.conf and the API server's manifest alone prove nothing: an init
# that timed out waiting for the control plane leaves both (kubeadm writes them
# in earlier phases), and a re-run must then start over, not skip.
started=/etc/kubernetes/kserve-cluster-init.started
finished=/etc/kubernetes/kserve-cluster-init.finished
cluster_files() {
  [ -f /etc/kubernetes/admin.conf ] && [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]
}

if cluster_files && [ -f "$finished" ]; then
  log "already initialised (kubeadm init finished here before): nothing to do"
elif cluster_files && [ ! -e "$started" ] \
    && timeout 60 kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw=/readyz >/dev/null 2>&1; then
  # A control plane initialised before these records existed, and answering.
  log "already initialised (the API server answers): nothing to do"
  touch "$finished"
elif cluster_files && [ ! -e "$started" ]; then
  die "this node has admin.conf and the API server's manifest, but the API server does not answer and nothing records how its init ended. If kubeadm init stopped half-way here, run 'sudo kubeadm reset -f' on this node and re-run pulumi up; if it is a working control plane that is still starting, wait for it and re-run."
else
  # Files of an init that stopped half-way would fail kubeadm's preflight, so
  # clear them and start over. (A foreign cluster's files were refused by the
  # preflight gate before this.)
  if [ -e "$started" ] || [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ] \
     || [ -e /etc/kubernetes/pki/ca.crt ] || [ -d /var/lib/etcd/member ]; then
    log "an earlier kubeadm init stopped half-way: kubeadm reset before trying again"
    kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock 2>&1 | redact
  fi
  rm -f "$finished"
  touch "$started"
  log "kubeadm init --config $config"
  # The output names the bootstrap token: log it only redacted.
  if ! kubeadm init --config "$config" 2>&1 | redact; then
    die "kubeadm init failed (output above). Fix the cause and re-run pulumi up: what this init left behind is reset first."
  fi
  touch "$finished"
  rm -f "$started"
fi

home=$(getent passwd "$LOGIN_USER" | cut -d: -f6 || true)
if [ -n "$home" ] && [ "$LOGIN_USER" != root ]; then
  install -d -m 0700 -o "$LOGIN_USER" "$home/.kube"
  install -m 0600 -o "$LOGIN_USER" /etc/kubernetes/admin.conf "$home/.kube/config"
fi
log "control plane ready at $(kubectl_admin config view -o jsonpath='{.clusters[0].cluster.server}')"
