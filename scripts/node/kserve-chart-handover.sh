#!/usr/bin/env bash
# Runs on the first control plane before the kserve-crd release moves to a KServe with the
# v0.17 chart layout (KServe's upgrade guide, its section on the move to the 0.17 charts): the
# kserve-crd chart no longer holds the LocalModel CRDs, and the controller chart no longer
# holds the ClusterServingRuntimes (kserve-runtime-configs does), so a plain `helm upgrade`
# deletes them. Here every serving.kserve.io CRD and every ClusterServingRuntime gets
# helm.sh/resource-policy=keep (Helm leaves them when a release drops them), and the
# runtimes are handed to the kserve-runtime-configs release (Helm's ownership annotations
# and label) so that its install adopts them. Nothing to do on a cluster without KServe.
#
# Inputs (environment): RUNTIMES_RELEASE, RELEASE_NAMESPACE.
set -euo pipefail
SCRIPT_NAME=kserve-chart-handover
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${RUNTIMES_RELEASE:?}" "${RELEASE_NAMESPACE:?}"
mapfile -t crds < <(kubectl_admin get crd -o name | grep '\.serving\.kserve\.io$' || true)
if [ "${#crds[@]}" -gt 0 ]; then
  kubectl_admin annotate --overwrite "${crds[@]}" helm.sh/resource-policy=keep >/dev/null
fi
log "${#crds[@]} KServe CRD(s) kept by Helm"
if printf '%s\n' "${crds[@]}" | grep -qx 'customresourcedefinition.apiextensions.k8s.io/clusterservingruntimes.serving.kserve.io'; then
  mapfile -t runtimes < <(kubectl_admin get clusterservingruntimes.serving.kserve.io -o name)
  if [ "${#runtimes[@]}" -gt 0 ]; then
    kubectl_admin annotate --overwrite "${runtimes[@]}" helm.sh/resource-policy=keep \
      "meta.helm.sh/release-name=${RUNTIMES_RELEASE}" \
      "meta.helm.sh/release-namespace=${RELEASE_NAMESPACE}" >/dev/null
    kubectl_admin label --overwrite "${runtimes[@]}" app.kubernetes.io/managed-by=Helm >/dev/null
  fi
  log "${#runtimes[@]} ClusterServingRuntime(s) handed to ${RELEASE_NAMESPACE}/${RUNTIMES_RELEASE}"
fi
