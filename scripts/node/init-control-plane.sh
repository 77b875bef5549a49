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
  log "kubeadm init --config $config"
  # The output names the bootstrap token: log it only redacted.
  if ! kubeadm init --config "$config" 2>&1 | redact; then
    die "kubeadm init failed (output above). Fix the cause, run 'sudo kubeadm reset -f' on this node if it got half-way, then re-run pulumi up."
  fi
fi

home=$(getent passwd "$LOGIN_USER" | cut -d: -f6 || true)
if [ -n "$home" ] && [ "$LOGIN_USER" != root ]; then
  install -d -m 0700 -o "$LOGIN_USER" "$home/.kube"
  install -m 0600 -o "$LOGIN_USER" /etc/kubernetes/admin.conf "$home/.kube/config"
fi
log "control plane ready at $(kubectl_admin config view -o jsonpath='{.clusters[0].cluster.server}')"
