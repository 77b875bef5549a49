#!/usr/bin/env bash
# On one node of an upgrade, its whole share of kubeadm's order, each step
# skipped when what the node runs shows it done (so a re-run resumes, and a
# node already at TARGET_VERSION, as on every fresh build, returns at once):
#   1. the pkgs.k8s.io repository moved to the target minor (its Release.key);
#   2. kubeadm at the target (held), then
#        MODE=apply (the first control plane): `kubeadm upgrade plan`, then
#                   `kubeadm upgrade apply v<target>` (it renews the certificates);
#        MODE=node  (other control planes, workers): `kubeadm upgrade node`;
#   3. drain (PodDisruptionBudgets respected: kubectl drain evicts), at most
#      DRAIN_TIMEOUT; a drain that fails uncordons the node and stops the run;
#   4. kubelet and kubectl at the target (held), the kubelet restarted;
#   5. Ready (READY_TIMEOUT_SECONDS), then uncordon.
# A marker file says the upgrade drained this node, so an interrupted run
# uncordons it on the next one and never uncordons a node someone else cordoned.
#
# Inputs (environment): MODE, NODE_NAME, TARGET_VERSION, K8S_PACKAGE_VERSION,
#   K8S_APT_REPO (the target minor's repository), DRAIN_TIMEOUT,
#   READY_TIMEOUT_SECONDS. stdin: the admin kubeconfig (a secret; drain and
#   uncordon need it, a worker has none of its own).
set -euo pipefail
SCRIPT_NAME=upgrade-node
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${MODE:?}" "${NODE_NAME:?}" "${TARGET_VERSION:?}" "${K8S_PACKAGE_VERSION:?}" "${K8S_APT_REPO:?}"
: "${DRAIN_TIMEOUT:=10m}" "${READY_TIMEOUT_SECONDS:=600}"
case "$MODE" in apply|node) ;; *) die "unknown MODE '${MODE}' (apply or node)" ;; esac

manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
marker=/var/lib/kserve-cluster/upgrade/drained
api_server=""  # a worker runs none
if [ -f "$manifest" ]; then
  # "image: registry.k8s.io/kube-apiserver:v<version>" -> <version>
  api_server=$(sed -n -E 's#^[[:space:]]*image:[[:space:]]*.*/kube-apiserver:v([0-9.]+).*#\1#p' "$manifest" | head -n 1)
fi
kubelet_now=$(kubelet --version 2>/dev/null | sed 's/^Kubernetes v//' || true)
kubelet_done=0
if [ "$kubelet_now" = "$TARGET_VERSION" ] && systemctl is-active --quiet kubelet; then
  kubelet_done=1
fi
if [ "$kubelet_done" = 1 ] && [ ! -e "$marker" ] \
   && { [ -z "$api_server" ] || [ "$api_server" = "$TARGET_VERSION" ]; }; then
  log "${NODE_NAME} already runs ${TARGET_VERSION}: nothing to do"
  exit 0
fi

# The admin kubeconfig lives only while this runs, root-only, next to the marker.
install -d -m 0700 "$(dirname "$marker")"
kubeconfig=$(umask 077 && mktemp "$(dirname "$marker")/kubeconfig.XXXXXX")
trap 'rm -f "$kubeconfig"' EXIT
cat >"$kubeconfig"
if [ ! -s "$kubeconfig" ]; then
  [ -f /etc/kubernetes/admin.conf ] || die "no admin kubeconfig on stdin: it is needed to drain ${NODE_NAME}."
  cp /etc/kubernetes/admin.conf "$kubeconfig"
fi
kube() { kubectl --kubeconfig "$kubeconfig" "$@"; }

# 1-2: the control plane's static pods, or the worker's kubelet configuration.
kubeadm_due=0
if [ -n "$api_server" ]; then
  [ "$api_server" = "$TARGET_VERSION" ] || kubeadm_due=1
elif [ "$kubelet_done" = 0 ]; then
  kubeadm_due=1
fi
if [ "$kubeadm_due" = 1 ] || [ "$kubelet_done" = 0 ]; then
  keyring=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
  list=/etc/apt/sources.list.d/kubernetes.list
  line="deb [signed-by=${keyring}] ${K8S_APT_REPO} /"
  if [ "$(cat "$list" 2>/dev/null)" != "$line" ]; then
    log "1. repository -> ${K8S_APT_REPO}, with its Release.key"
    tmp=$(mktemp)
    curl -fsSL "${K8S_APT_REPO}Release.key" | gpg --dearmor --yes -o "$tmp"
    install -m 0644 "$tmp" "$keyring"
    rm -f "$tmp"
    echo "$line" | write_if_changed "$list" || true
  fi
  apt_get update
fi
if [ "$kubeadm_due" = 1 ]; then
  log "2. kubeadm ${K8S_PACKAGE_VERSION} (held)"
  apt_get install --allow-change-held-packages "kubeadm=${K8S_PACKAGE_VERSION}"
  apt-mark hold kubeadm >/dev/null
  # kubeadm's output goes to stderr, which Pulumi shows when the step fails.
  if [ "$MODE" = apply ]; then
    log "2. kubeadm upgrade plan v${TARGET_VERSION}"
    kubeadm upgrade plan "v${TARGET_VERSION}" 2>&1 | redact >&2 \
      || die "kubeadm upgrade plan v${TARGET_VERSION} refused (above); nothing was upgraded on ${NODE_NAME}. Fix what it names, then re-run pulumi up."
    log "2. kubeadm upgrade apply v${TARGET_VERSION}"
    kubeadm upgrade apply -y "v${TARGET_VERSION}" 2>&1 | redact >&2 \
      || die "kubeadm upgrade apply v${TARGET_VERSION} failed on ${NODE_NAME} (above); kubeadm rolls its static pods back itself. Check 'kubectl -n kube-system get pods', then re-run pulumi up."
  else
    log "2. kubeadm upgrade node"
    kubeadm upgrade node 2>&1 | redact >&2 \
      || die "kubeadm upgrade node failed on ${NODE_NAME} (above); it is not drained yet. Fix what it names, then re-run pulumi up: finished nodes are skipped, this one resumes."
  fi
fi

# 3-4: drained while its kubelet changes.
if [ "$kubelet_done" = 0 ]; then
  echo "$TARGET_VERSION" >"$marker"
  log "3. draining ${NODE_NAME} (timeout ${DRAIN_TIMEOUT})"
  if ! kube drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout "$DRAIN_TIMEOUT"; then
    kube uncordon "$NODE_NAME" || true
    rm -f "$marker"
    die "could not drain ${NODE_NAME} within ${DRAIN_TIMEOUT} (a PodDisruptionBudget that allows no eviction, or a pod that does not stop); it is uncordoned again and the upgrade stopped here. See 'kubectl get pdb -A', fix it or raise upgrade.drainTimeout, then re-run pulumi up: finished nodes are skipped."
  fi
  log "4. kubelet and kubectl ${K8S_PACKAGE_VERSION} (held), kubelet restarted"
  apt_get install --allow-change-held-packages "kubelet=${K8S_PACKAGE_VERSION}" "kubectl=${K8S_PACKAGE_VERSION}"
  apt-mark hold kubelet kubectl >/dev/null
  systemctl daemon-reload
  systemctl restart kubelet \
    || die "the kubelet ${TARGET_VERSION} did not start on ${NODE_NAME}; it stays cordoned. Check 'journalctl -u kubelet', then re-run pulumi up."
fi

# 5: back in service (also when a run stopped after the restart).
if [ -e "$marker" ]; then
  log "5. waiting until ${NODE_NAME} is Ready, then uncordon"
  kube wait --for=condition=Ready "node/${NODE_NAME}" --timeout "${READY_TIMEOUT_SECONDS}s" >/dev/null \
    || die "${NODE_NAME} is not Ready ${READY_TIMEOUT_SECONDS}s after its kubelet restarted; it stays cordoned. Check 'journalctl -u kubelet' on it, then re-run pulumi up."
  kube uncordon "$NODE_NAME"
  rm -f "$marker"
fi
log "${NODE_NAME} runs ${TARGET_VERSION}"
