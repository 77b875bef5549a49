#!/usr/bin/env bash
# Read-only, on the control plane: the versions an upgrade is judged by, before
# anything changes (components/upgrade/plan.py reads them). One line each:
#   api_server=<version>            the kube-apiserver of this control plane
#                                   (its static pod manifest); empty: no cluster
#   api_server_of=<node> <version>  every control plane's kube-apiserver (its
#                                   mirror pod's image: kubeadm's static pods carry
#                                   the label component=kube-apiserver)
#   node=<name> <kubelet version> <Ready|NotReady>
# A node with no cluster yet prints only `api_server=`.
set -euo pipefail
SCRIPT_NAME=upgrade-versions
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
if [ ! -f "$manifest" ] || [ ! -f /etc/kubernetes/admin.conf ]; then
  echo "api_server="
  exit 0
fi
# "image: registry.k8s.io/kube-apiserver:v<version>" -> <version>
api_server=$(sed -n -E 's#^[[:space:]]*image:[[:space:]]*.*/kube-apiserver:v([0-9.]+).*#\1#p' "$manifest" | head -n 1)
echo "api_server=${api_server}"
kubectl_admin -n kube-system get pods -l component=kube-apiserver --no-headers \
  -o 'custom-columns=NODE:.spec.nodeName,IMAGE:.spec.containers[0].image' \
  | while read -r name image; do
      echo "api_server_of=${name} ${image##*:v}"
    done
kubectl_admin get nodes --no-headers \
  -o 'custom-columns=NAME:.metadata.name,VERSION:.status.nodeInfo.kubeletVersion,READY:.status.conditions[?(@.type=="Ready")].status' \
  | while read -r name version ready; do
      [ "$ready" = True ] && ready=Ready || ready=NotReady
      echo "node=${name} ${version#v} ${ready}"
    done
