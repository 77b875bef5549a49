#!/usr/bin/env bash
# kubeadm join from the JoinConfiguration on stdin (it carries the bootstrap
# token, so it is written root-only and removed afterwards).
# Guarded: a node that has already joined changes nothing.
#
# Inputs (environment): NODE_NAME.
set -euo pipefail
SCRIPT_NAME=kubeadm-join
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_NAME:?}"
config=/etc/kubernetes/kubeadm-join.yaml
if [ -f /etc/kubernetes/kubelet.conf ]; then
  cat >/dev/null
  log "${NODE_NAME} has already joined (/etc/kubernetes/kubelet.conf exists): nothing to do"
  exit 0
fi
# Not joined, but files of a join that stopped half-way: kubeadm's preflight would
# refuse them, so reset first (the node is not a member yet, nothing is lost).
if [ -e /etc/kubernetes/pki/ca.crt ] || [ -e /etc/kubernetes/bootstrap-kubelet.conf ]; then
  log "an earlier kubeadm join stopped half-way: kubeadm reset before trying again"
  kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock 2>&1 | redact
fi
mkdir -p /etc/kubernetes
(umask 077 && cat >"$config")
trap 'rm -f "$config"' EXIT
log "kubeadm join as ${NODE_NAME}"
if ! kubeadm join --config "$config" 2>&1 | redact; then
  die "kubeadm join failed on ${NODE_NAME} (output above). If the token expired, re-issue it: pulumi up --replace <URN of join-token-${NODE_NAME}> (pulumi stack --show-urns lists it)."
fi
log "${NODE_NAME} joined"
