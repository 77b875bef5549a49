#!/usr/bin/env bash
# Runs on the control plane after the CNI is installed: wait until every
# expected node is registered and Ready, all of them at once (one `kubectl wait`
# for every node, so the wait takes as long as the slowest node, not the sum).
#
# Inputs (environment): NODE_NAMES (space-separated), READY_TIMEOUT_SECONDS.
set -euo pipefail
SCRIPT_NAME=wait-nodes-ready
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_NAMES:?}" "${READY_TIMEOUT_SECONDS:=900}"
read -r -a names <<<"$NODE_NAMES"
targets=("${names[@]/#/node/}")
deadline=$(( $(date +%s) + READY_TIMEOUT_SECONDS ))

# The expected nodes that are not Ready now (absent ones included).
not_ready() {
  local listing name status missing=()
  listing=$(kubectl_admin get nodes --no-headers 2>/dev/null || true)
  for name in "${names[@]}"; do
    status=$(awk -v n="$name" '$1 == n {print $2}' <<<"$listing")
    case "$status" in
      Ready|Ready,*) ;;
      *) missing+=("$name") ;;
    esac
  done
  echo "${missing[*]}"
}

while true; do
  left=$(( deadline - $(date +%s) ))
  # Returns once all are Ready; fails at once while a node is not registered yet.
  if [ "$left" -gt 0 ] && kubectl_admin wait --for=condition=Ready "${targets[@]}" \
      --timeout="$(( left < 60 ? left : 60 ))s" >/dev/null 2>&1; then
    log "${#names[@]} node(s) Ready: ${names[*]}"
    exit 0
  fi
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 0 ]; then
    late=$(not_ready)
    if [ -z "$late" ]; then
      log "${#names[@]} node(s) Ready: ${names[*]}"
      exit 0
    fi
    kubectl_admin get nodes -o wide || true
    die "node(s) ${late} not Ready after ${READY_TIMEOUT_SECONDS}s; check the calico-node pod on each (kubectl -n calico-system get pods -o wide) and 'journalctl -u kubelet' there."
  fi
  sleep "$(( left < 5 ? left : 5 ))"
done
