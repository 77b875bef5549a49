#!/usr/bin/env bash
# Runs on the control plane: wait until a Service has ready endpoints. Used for
# admission webhooks with failurePolicy Fail (cert-manager, Knative, KServe):
# objects they check can only be created once the webhook answers.
#
# Inputs (environment): NAMESPACE, SERVICE, TIMEOUT_SECONDS.
set -euo pipefail
SCRIPT_NAME=wait-endpoints
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NAMESPACE:?}" "${SERVICE:?}" "${TIMEOUT_SECONDS:=600}"
deadline=$(( $(date +%s) + TIMEOUT_SECONDS ))
until [ -n "$(kubectl_admin -n "$NAMESPACE" get endpoints "$SERVICE" \
              -o jsonpath='{.subsets[*].addresses[*].ip}' 2>/dev/null)" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    kubectl_admin -n "$NAMESPACE" get pods -o wide || true
    die "service ${NAMESPACE}/${SERVICE} has no ready endpoints after ${TIMEOUT_SECONDS}s; check its pods above ('kubectl -n ${NAMESPACE} describe pod ...')."
  fi
  sleep 5
done
log "service ${NAMESPACE}/${SERVICE} has ready endpoints"
