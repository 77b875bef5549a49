#!/usr/bin/env bash
# On the node being upgraded: kubeadm first (pinned, held), then
#   MODE=apply (the first control plane): `kubeadm upgrade plan`, then
#              `kubeadm upgrade apply v<target>` (which renews its certificates);
#   MODE=node  (other control planes, workers): `kubeadm upgrade node`.
# Skipped where it is done already: the control plane's API server runs the
# target (apply), or the kubelet does (node), so a re-run resumes.
#
# Inputs (environment): MODE, TARGET_VERSION, K8S_PACKAGE_VERSION.
set -euo pipefail
SCRIPT_NAME=upgrade-kubeadm
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${MODE:?}" "${TARGET_VERSION:?}" "${K8S_PACKAGE_VERSION:?}"
manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
running_api=$(sed -n -E 's#^[[:space:]]*image:[[:space:]]*.*/kube-apiserver:v([0-9.]+).*#\1#p' "$manifest" 2>/dev/null | head -n 1 || true)
case "$MODE" in
  apply) done_when="$running_api" ;;
  node)
    if [ -f "$manifest" ]; then done_when="$running_api"
    else done_when=$(kubelet --version 2>/dev/null | sed 's/^Kubernetes v//'); fi ;;
  *) die "unknown MODE '${MODE}' (apply or node)" ;;
esac
if [ "$done_when" = "$TARGET_VERSION" ]; then
  log "already at ${TARGET_VERSION}: nothing to do"
  exit 0
fi

log "kubeadm ${K8S_PACKAGE_VERSION} (held)"
apt_get install --allow-change-held-packages "kubeadm=${K8S_PACKAGE_VERSION}"
apt-mark hold kubeadm >/dev/null
if [ "$MODE" = apply ]; then
  log "kubeadm upgrade plan v${TARGET_VERSION}"
  kubeadm upgrade plan "v${TARGET_VERSION}" 2>&1 | redact
  log "kubeadm upgrade apply v${TARGET_VERSION}"
  kubeadm upgrade apply -y "v${TARGET_VERSION}" 2>&1 | redact
else
  log "kubeadm upgrade node"
  kubeadm upgrade node 2>&1 | redact
fi
