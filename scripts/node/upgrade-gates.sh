#!/usr/bin/env bash
# On the first control plane, before an upgrade changes anything: the gates of
# kubeadm's upgrade docs, then an etcd snapshot. When every node already runs
# TARGET_VERSION (a fresh cluster, or a finished upgrade) it does nothing.
# Each failed gate names itself and what to do; the run stops before any change.
#
# Inputs (environment): TARGET_VERSION (e.g. 1.32.4), SNAPSHOT_COMMAND (default:
#   the snapshot runner etcd-backup-install.sh installs,
#   i.e. scripts/node/etcd-snapshot.sh).
set -euo pipefail
SCRIPT_NAME=upgrade-gates
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${TARGET_VERSION:?}"
SNAPSHOT_COMMAND=${SNAPSHOT_COMMAND:-/usr/local/sbin/kserve-etcd-snapshot}
target_minor=${TARGET_VERSION#*.}
target_minor=${target_minor%%.*}

manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
api_server=$(sed -n -E 's#^[[:space:]]*image:[[:space:]]*.*/kube-apiserver:v([0-9.]+).*#\1#p' "$manifest" | head -n 1)
listing=$(kubectl_admin get nodes --no-headers \
  -o 'custom-columns=NAME:.metadata.name,VERSION:.status.nodeInfo.kubeletVersion,READY:.status.conditions[?(@.type=="Ready")].status')

# Every control plane's kube-apiserver (its mirror pod), not only this one's.
api_servers=$(kubectl_admin -n kube-system get pods -l component=kube-apiserver --no-headers \
  -o 'custom-columns=NODE:.spec.nodeName,IMAGE:.spec.containers[0].image')

behind=""
while read -r name version _; do
  [ "${version#v}" = "$TARGET_VERSION" ] || behind="$behind $name"
done <<<"$listing"
while read -r name image; do
  [ -z "$name" ] || [ "${image##*:v}" = "$TARGET_VERSION" ] || behind="$behind ${name}(kube-apiserver)"
done <<<"$api_servers"
if [ "$api_server" = "$TARGET_VERSION" ] && [ -z "$behind" ]; then
  log "every node runs ${TARGET_VERSION}: nothing to upgrade"
  exit 0
fi

failed=0
gate_failed() { printf '[%s] GATE FAILED: %s\n' "$SCRIPT_NAME" "$*" >&2; failed=1; }

# (A stack node that is not in the cluster was refused before this, by the
# preflight's version check: components/upgrade/plan.py.)
log "gate: every node Ready"
while read -r name _ ready; do
  [ "$ready" = True ] \
    || gate_failed "nodes: ${name} is NotReady. Fix it first (kubectl describe node ${name}; journalctl -u kubelet on it), then re-run pulumi up."
done <<<"$listing"

log "gate: the API server's /readyz, and etcd through it"
if [ "$(kubectl_admin get --raw /readyz 2>&1)" != ok ]; then
  gate_failed "readyz: the API server is not ready (kubectl get --raw '/readyz?verbose' says why)."
fi
if [ "$(kubectl_admin get --raw /readyz/etcd 2>&1)" != ok ]; then
  gate_failed "etcd: the API server reports etcd unhealthy (kubectl get --raw /readyz/etcd). Restore etcd's health before upgrading."
fi

log "gate: version skew for ${TARGET_VERSION}"
# kubelets may be up to three minors older than the API server, never newer
# (kubernetes.io/releases/version-skew-policy).
while read -r name version _; do
  minor=${version#v*.}
  minor=${minor%%.*}
  if [ "$minor" -gt "$target_minor" ]; then
    gate_failed "skew: ${name}'s kubelet ${version} is newer than ${TARGET_VERSION}; a kubelet may never be newer than its API server."
  elif [ "$minor" -lt $((target_minor - 3)) ]; then
    gate_failed "skew: ${name}'s kubelet ${version} is more than three minors older than ${TARGET_VERSION}; upgrade it first."
  fi
done <<<"$listing"

log "gate: no API version removed in ${TARGET_VERSION%.*} or earlier is in use"
# apiserver_requested_deprecated_apis{group,version,resource,subresource,removed_release}
# is 1 for each deprecated API version requested since the API server started: the
# Kubernetes metrics reference (kubernetes.io/docs/reference/instrumentation/metrics/)
# and the Deprecated API Migration Guide's "Locate use of deprecated APIs".
while IFS= read -r line; do
  removed=$(sed -n -E 's/.*removed_release="([0-9]+)\.([0-9]+)".*/\2/p' <<<"$line")
  if [ -z "$removed" ] || [ "$removed" -gt "$target_minor" ]; then continue; fi
  what=$(sed -E 's/.*group="([^"]*)".*resource="([^"]*)".*version="([^"]*)".*/\2.\1\/\3/' <<<"$line")
  gate_failed "removed API: ${what} is still requested and is gone in 1.${removed}. Move its clients and manifests to the newer API version first (kubernetes.io/docs/reference/using-api/deprecation-guide/)."
done < <(kubectl_admin get --raw /metrics | grep '^apiserver_requested_deprecated_apis{' || true)

if [ "$failed" -ne 0 ]; then
  die "a gate failed (above); nothing was upgraded. Fix it and re-run pulumi up."
fi

log "etcd snapshot before the upgrade"
"$SNAPSHOT_COMMAND" >&2 || die "the etcd snapshot failed; nothing was upgraded. Check ${SNAPSHOT_COMMAND} (docs/operations.md), then re-run pulumi up."
log "gates passed, snapshot taken: upgrading ${api_server} -> ${TARGET_VERSION}"
