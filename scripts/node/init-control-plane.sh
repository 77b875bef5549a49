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

if [ -f /etc/kubernetes/admin.conf ] && [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]; then
  log "already initialised (/etc/kubernetes/admin.conf exists): nothing to do"
else
  # No admin.conf means no usable cluster here: files of an init that stopped
  # half-way would fail kubeadm's preflight, so clear them and start over.
  # (A foreign cluster's files were refused by the preflight gate before this.)
  if [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ] || [ -e /etc/kubernetes/pki/ca.crt ] \
     || [ -d /var/lib/etcd/member ]; then
    log "an earlier kubeadm init stopped half-way: kubeadm reset before trying again"
    kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock 2>&1 | redact
  fi
  log "kubeadm init --config $config"
  # The output names the bootstrap token: log it only redacted.
  if ! kubeadm init --config "$config" 2>&1 | redact; then
    die "kubeadm init failed (output above). Fix the cause and re-run pulumi up: what this init left behind is reset first."
  fi
fi

home=$(getent passwd "$LOGIN_USER" | cut -d: -f6 || true)
if [ -n "$home" ] && [ "$LOGIN_USER" != root ]; then
  install -d -m 0700 -o "$LOGIN_USER" "$home/.kube"
  install -m 0600 -o "$LOGIN_USER" /etc/kubernetes/admin.conf "$home/.kube/config"
fi
log "control plane ready at $(kubectl_admin config view -o jsonpath='{.clusters[0].cluster.server}')"
