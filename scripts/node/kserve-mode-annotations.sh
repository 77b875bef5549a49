#!/usr/bin/env bash
# Runs on the control plane right after KServe's webhook is up on a KServe version that
# renamed the deployment modes (v0.16+): sets each InferenceService's
# serving.kserve.io/deploymentMode annotation to the one value that webhook accepts, so
# that neither the program's updates of its models nor the controller's own (its
# finalizer on deletion) are refused (components/serving/deployment_mode.py has the rule).
# An InferenceService without the annotation or without a recorded mode is left alone:
# the webhook checks neither.
#
# Inputs (environment): NORMALIZE ("true": the webhook compares with the recorded mode
# under its new name, KServe v0.19+; otherwise with the recorded mode as it is).
set -euo pipefail
SCRIPT_NAME=kserve-mode-annotations
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NORMALIZE:?}"
key=serving.kserve.io/deploymentMode
changed=0
# namespace|name|recorded mode|annotation (empty when absent), one line each ('|' is
# in no name; a tab would not keep an empty field).
rows=$(kubectl_admin get inferenceservices.serving.kserve.io -A -o jsonpath='{range .items[*]}{.metadata.namespace}{"|"}{.metadata.name}{"|"}{.status.deploymentMode}{"|"}{.metadata.annotations.serving\.kserve\.io/deploymentMode}{"\n"}{end}')
while IFS='|' read -r namespace name status annotation; do
  if [ -z "$namespace" ] || [ -z "$status" ] || [ -z "$annotation" ]; then continue; fi
  want=$status
  if [ "$NORMALIZE" = true ]; then
    case "$status" in
      Serverless) want=Knative ;;
      RawDeployment) want=Standard ;;
    esac
  fi
  [ "$annotation" = "$want" ] && continue
  kubectl_admin -n "$namespace" annotate --overwrite inferenceservices.serving.kserve.io "$name" "${key}=${want}" >/dev/null \
    || die "could not set ${key}=${want} on InferenceService ${namespace}/${name} (it has ${annotation}); run: kubectl -n ${namespace} annotate --overwrite isvc ${name} ${key}=${want}, then re-run pulumi up."
  log "${namespace}/${name}: ${key} ${annotation} -> ${want} (recorded mode ${status})"
  changed=$((changed + 1))
done <<<"$rows"
log "deployment-mode annotations: ${changed} changed"
