#!/usr/bin/env bash
# On each node of an upgrade: move the pkgs.k8s.io repository to the target
# minor (pkgs.k8s.io has one repository per minor, each signed with its own
# Release.key). The packages stay held; nothing is installed here. A node
# whose kubelet already runs TARGET_VERSION is left alone.
#
# Inputs (environment): TARGET_VERSION, K8S_APT_REPO (the target minor's repository).
set -euo pipefail
SCRIPT_NAME=upgrade-repository
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${TARGET_VERSION:?}" "${K8S_APT_REPO:?}"
manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
api_server=$TARGET_VERSION  # a worker has none
if [ -f "$manifest" ]; then
  api_server=$(sed -n -E 's#^[[:space:]]*image:[[:space:]]*.*/kube-apiserver:v([0-9.]+).*#\1#p' "$manifest" | head -n 1)
fi
if [ "$(kubelet --version 2>/dev/null)" = "Kubernetes v${TARGET_VERSION}" ] && [ "$api_server" = "$TARGET_VERSION" ]; then
  log "this node already runs ${TARGET_VERSION}: nothing to move"
  exit 0
fi
keyring=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
list=/etc/apt/sources.list.d/kubernetes.list
line="deb [signed-by=${keyring}] ${K8S_APT_REPO} /"
if [ "$(cat "$list" 2>/dev/null)" = "$line" ]; then
  log "the repository is already ${K8S_APT_REPO}"
else
  log "repository -> ${K8S_APT_REPO}, with its Release.key"
  tmp=$(mktemp)
  curl -fsSL "${K8S_APT_REPO}Release.key" | gpg --dearmor --yes -o "$tmp"
  install -m 0644 "$tmp" "$keyring"
  rm -f "$tmp"
  echo "$line" | write_if_changed "$list" || true
fi
apt_get update
