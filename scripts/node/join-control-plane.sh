#!/usr/bin/env bash
# kubeadm join --control-plane from the JoinConfiguration on stdin (rendered by
# components/cluster/kubeadm_config.py; it carries the token and the certificate
# key, so it is written root-only and removed afterwards). The node gets its own
# API server and a stacked etcd member. Guarded: a control plane that has joined
# already changes nothing.
#
# Inputs (environment): NODE_NAME, LOGIN_USER (gets a copy of admin.conf).
set -euo pipefail
SCRIPT_NAME=kubeadm-join-control-plane
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_NAME:?}" "${LOGIN_USER:?}"
config=/etc/kubernetes/kubeadm-join.yaml
joined() {
  [ -f /etc/kubernetes/kubelet.conf ] && [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ] \
    && [ -f /etc/kubernetes/manifests/etcd.yaml ] && [ -f /etc/kubernetes/admin.conf ]
}
if joined; then
  cat >/dev/null
  log "${NODE_NAME} is a control plane already: nothing to do"
else
  # Files of a join that stopped half-way fail kubeadm's preflight: reset first.
  # kubeadm reset also takes out an etcd member this node may have added.
  if [ -e /etc/kubernetes/pki/ca.crt ] || [ -e /etc/kubernetes/kubelet.conf ] \
     || [ -d /var/lib/etcd/member ]; then
    log "an earlier kubeadm join stopped half-way: kubeadm reset before trying again"
    kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock 2>&1 | redact
  fi
  mkdir -p /etc/kubernetes
  (umask 077 && cat >"$config")
  trap 'rm -f "$config"' EXIT
  log "kubeadm join --control-plane as ${NODE_NAME}"
  if ! kubeadm join --config "$config" 2>&1 | redact; then
    die "kubeadm join --control-plane failed on ${NODE_NAME} (output above). The certificate key lives 2 hours and the token 1: re-issue both with pulumi up --replace <URN of ${NODE_NAME}-join-key> (pulumi stack --show-urns lists it)."
  fi
  log "${NODE_NAME} joined as a control plane"
fi
home=$(getent passwd "$LOGIN_USER" | cut -d: -f6 || true)
if [ -n "$home" ] && [ "$LOGIN_USER" != root ]; then
  install -d -m 0700 -o "$LOGIN_USER" "$home/.kube"
  install -m 0600 -o "$LOGIN_USER" /etc/kubernetes/admin.conf "$home/.kube/config"
fi
