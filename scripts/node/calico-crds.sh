#!/usr/bin/env bash
# Runs on the first control plane before the tigera-operator chart installs or moves to a
# Calico version: applies that version's CRDs server-side, as Calico's upgrade docs do
# before `helm upgrade`, because Helm never upgrades the CRDs in a chart's crds/ and so
# would leave the old ones (and miss new ones) on a train move. From Calico v3.32 the CRDs
# belong to the crd.projectcalico.org.v1 chart's release: with RELEASE set, each CRD of the
# file is also marked as that release's (Helm's ownership annotations and label), so that
# Helm adopts the CRDs an older train left unowned instead of refusing to install over them.
#
# Inputs (environment): CRDS_URL; RELEASE and RELEASE_NAMESPACE (optional, together).
set -euo pipefail
SCRIPT_NAME=calico-crds
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${CRDS_URL:?}" "${RELEASE:=}" "${RELEASE_NAMESPACE:=}"
kubectl_admin apply --server-side --force-conflicts -f "$CRDS_URL" >/dev/null \
  || die "could not apply the Calico CRDs from ${CRDS_URL}; check that the control plane can reach it, then re-run pulumi up."
log "applied the CRDs of ${CRDS_URL} (server-side)"
if [ -n "$RELEASE" ]; then
  : "${RELEASE_NAMESPACE:?RELEASE needs RELEASE_NAMESPACE}"
  kubectl_admin annotate --overwrite -f "$CRDS_URL" \
    "meta.helm.sh/release-name=${RELEASE}" "meta.helm.sh/release-namespace=${RELEASE_NAMESPACE}" >/dev/null
  kubectl_admin label --overwrite -f "$CRDS_URL" app.kubernetes.io/managed-by=Helm >/dev/null
  log "the CRDs belong to the Helm release ${RELEASE_NAMESPACE}/${RELEASE}"
fi
