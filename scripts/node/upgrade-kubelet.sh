#!/usr/bin/env bash
# On a drained node of an upgrade: kubelet and kubectl at the target (pinned,
# held), then the kubelet restarted. Skipped when the kubelet already runs the
# target and is active.
#
# Inputs (environment): TARGET_VERSION, K8S_PACKAGE_VERSION.
set -euo pipefail
SCRIPT_NAME=upgrade-kubelet
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${TARGET_VERSION:?}" "${K8S_PACKAGE_VERSION:?}"
if [ "$(kubelet --version 2>/dev/null)" = "Kubernetes v${TARGET_VERSION}" ] \
   && systemctl is-active --quiet kubelet; then
  log "the kubelet already runs ${TARGET_VERSION}"
  exit 0
fi
log "kubelet and kubectl ${K8S_PACKAGE_VERSION} (held)"
apt_get install --allow-change-held-packages \
  "kubelet=${K8S_PACKAGE_VERSION}" "kubectl=${K8S_PACKAGE_VERSION}"
apt-mark hold kubelet kubectl >/dev/null
systemctl daemon-reload
systemctl restart kubelet
log "kubelet restarted at ${TARGET_VERSION}"
