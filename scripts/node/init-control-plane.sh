#!/usr/bin/env bash
# kubeadm init from the config on stdin (rendered by components/cluster/kubeadm_config.py).
# Guarded: on a node that is already a control plane it changes nothing.
#
# Inputs (environment): LOGIN_USER (gets a copy of the admin kubeconfig);
# UPLOAD_CERTS=true with several control planes (kubeadm init --upload-certs, so
# that the shared certificates are in the cluster for the joins);
# CONTROL_PLANE_ENDPOINT (host:port the config names).
set -euo pipefail
SCRIPT_NAME=kubeadm-init
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${LOGIN_USER:?}"
UPLOAD_CERTS=${UPLOAD_CERTS:-false}
CONTROL_PLANE_ENDPOINT=${CONTROL_PLANE_ENDPOINT:-}
config=/etc/kubernetes/kubeadm-init.yaml
mkdir -p /etc/kubernetes  # kubeadm keeps it 0755; our files in it are 0600
cat | write_if_changed "$config" 0600 || true

# An init of ours leaves `started` before it runs and `finished` once kubeadm init
# succeeded. admin.conf and the API server's manifest alone prove nothing: an init
# that timed out waiting for the control plane leaves both (kubeadm writes them
# in earlier phases), and a re-run must then start over, not skip.
started=/etc/kubernetes/kserve-cluster-init.started
finished=/etc/kubernetes/kserve-cluster-init.finished
cluster_files() {
  [ -f /etc/kubernetes/admin.conf ] && [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]
}

# A running cluster keeps the controlPlaneEndpoint it was built with: kubeadm
# init does not run again. A stack that now names another one (a virtual IP in
# front of a cluster built with one control plane) is refused with the steps that
# move the cluster, instead of joining new control planes through the old address.
check_endpoint() {
  local running
  [ -n "$CONTROL_PLANE_ENDPOINT" ] || return 0
  running=$(kubectl_admin -n kube-system get configmap kubeadm-config \
    -o jsonpath='{.data.ClusterConfiguration}' 2>/dev/null \
    | sed -n 's/^controlPlaneEndpoint: *//p' | tr -d '"' || true)
  if [ -n "$running" ] && [ "$running" != "$CONTROL_PLANE_ENDPOINT" ]; then
    die "this cluster was built with controlPlaneEndpoint ${running}; the stack now names ${CONTROL_PLANE_ENDPOINT}. Nothing was changed and no control plane joins through the old address. Move the cluster to the new endpoint by hand first, as docs/operations.md 'Grow to three control planes' lists step by step: (1) add the new endpoint to the API server certificate (kubeadm init phase certs apiserver with the new certSANs, after moving apiserver.crt/.key aside), (2) set controlPlaneEndpoint in the kubeadm-config ConfigMap, (3) set the server in the cluster-info ConfigMap (kube-public) and in kube-proxy's ConfigMap, (4) set the server in admin.conf, super-admin.conf and kubelet.conf on every node and restart the kubelets and kube-proxy, then re-run pulumi up."
  fi
}

if cluster_files && [ -f "$finished" ]; then
  log "already initialised (kubeadm init finished here before): nothing to do"
  check_endpoint
elif cluster_files && [ ! -e "$started" ] \
    && timeout 60 kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw=/readyz >/dev/null 2>&1; then
  # A control plane initialised before these records existed, and answering.
  log "already initialised (the API server answers): nothing to do"
  touch "$finished"
  check_endpoint
elif cluster_files && [ ! -e "$started" ]; then
  die "this node has admin.conf and the API server's manifest, but the API server does not answer and nothing records how its init ended. If kubeadm init stopped half-way here, run 'sudo kubeadm reset -f' on this node and re-run pulumi up; if it is a working control plane that is still starting, wait for it and re-run."
else
  # Files of an init that stopped half-way would fail kubeadm's preflight, so
  # clear them and start over. (A foreign cluster's files were refused by the
  # preflight gate before this.)
  if [ -e "$started" ] || [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ] \
     || [ -e /etc/kubernetes/pki/ca.crt ] || [ -d /var/lib/etcd/member ]; then
    log "an earlier kubeadm init stopped half-way: kubeadm reset before trying again"
    kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock 2>&1 | redact
  fi
  rm -f "$finished"
  touch "$started"
  flags=(--config "$config")
  [ "$UPLOAD_CERTS" = true ] && flags+=(--upload-certs)
  log "kubeadm init ${flags[*]}"
  # The output names the bootstrap token (and the certificate key): log it only redacted.
  if ! kubeadm init "${flags[@]}" 2>&1 | redact; then
    die "kubeadm init failed (output above). Fix the cause and re-run pulumi up: what this init left behind is reset first."
  fi
  touch "$finished"
  rm -f "$started"
fi

home=$(getent passwd "$LOGIN_USER" | cut -d: -f6 || true)
if [ -n "$home" ] && [ "$LOGIN_USER" != root ]; then
  install -d -m 0700 -o "$LOGIN_USER" "$home/.kube"
  install -m 0600 -o "$LOGIN_USER" /etc/kubernetes/admin.conf "$home/.kube/config"
fi
log "control plane ready at $(kubectl_admin config view -o jsonpath='{.clusters[0].cluster.server}')"
