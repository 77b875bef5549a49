#!/usr/bin/env bash
# Prepare an Ubuntu 22.04 machine to run kubelet: swap off, kernel modules and
# sysctls, containerd with the systemd cgroup driver, pinned and held kubelet,
# kubeadm and kubectl. Safe to run again: every step checks before it changes.
#
# Inputs (environment): NODE_ROLE, K8S_PACKAGE_VERSION, K8S_APT_REPO,
#   CONTAINERD_PACKAGE_VERSION, DOCKER_APT_REPO, PAUSE_IMAGE, K8S_VERSION_TAG,
#   EXTRA_PACKAGES (optional, space-separated Ubuntu packages, e.g. nfs-common).
set -euo pipefail
SCRIPT_NAME=prepare-node
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_ROLE:?}" "${K8S_PACKAGE_VERSION:?}" "${K8S_APT_REPO:?}" "${K8S_VERSION_TAG:?}"
: "${CONTAINERD_PACKAGE_VERSION:?}" "${DOCKER_APT_REPO:?}" "${PAUSE_IMAGE:?}"

. /etc/os-release
if [ "${ID:-}" != ubuntu ] || [ "${VERSION_ID:-}" != "22.04" ]; then
  die "this node runs ${PRETTY_NAME:-an unknown OS}; only Ubuntu 22.04 is supported."
fi

log "swap off, now and across reboots"
swapoff -a
# Comment out every active swap line in fstab (idempotent: commented lines are skipped).
sed -i -E '/^[[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]/s/^/#/' /etc/fstab

log "kernel modules overlay and br_netfilter, now and at boot"
printf 'overlay\nbr_netfilter\n' | write_if_changed /etc/modules-load.d/kubernetes.conf || true
modprobe overlay
modprobe br_netfilter

log "sysctls for bridged traffic and forwarding"
cat <<'CONF' | write_if_changed /etc/sysctl.d/99-kubernetes.conf || true
net.bridge.bridge-nf-call-iptables  = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward                 = 1
CONF
sysctl --system >/dev/null

log "apt prerequisites"
apt_get update
# conntrack and socat: kubeadm's preflight needs them, and the 1.31 packages
# do not depend on them.
apt_get install apt-transport-https ca-certificates curl gpg conntrack socat
if [ -n "${EXTRA_PACKAGES:-}" ]; then
  log "packages the stack's storage needs: ${EXTRA_PACKAGES}"
  read -r -a extra_packages <<<"$EXTRA_PACKAGES"
  apt_get install "${extra_packages[@]}"
fi

# On a node that is already in a cluster at another version, the Kubernetes
# packages and their repository belong to the upgrade (components/upgrade, in
# kubeadm's order): a raised kubernetes.version must not move them here first.
k8s_packages=1
if [ -f /etc/kubernetes/kubelet.conf ] \
   && [ "$(kubelet --version 2>/dev/null)" != "Kubernetes ${K8S_VERSION_TAG}" ]; then
  log "in a cluster at $(kubelet --version 2>/dev/null || echo 'an unknown version'): the upgrade moves it to ${K8S_VERSION_TAG}"
  k8s_packages=0
fi

arch=$(dpkg --print-architecture)
install -d -m 0755 /etc/apt/keyrings
sources_changed=0
if [ ! -s /etc/apt/keyrings/docker.gpg ]; then
  curl -fsSL "${DOCKER_APT_REPO}/gpg" | gpg --dearmor --yes -o /etc/apt/keyrings/docker.gpg
  sources_changed=1
fi
echo "deb [arch=${arch} signed-by=/etc/apt/keyrings/docker.gpg] ${DOCKER_APT_REPO} ${VERSION_CODENAME} stable" \
  | write_if_changed /etc/apt/sources.list.d/docker.list && sources_changed=1
if [ "$k8s_packages" -eq 1 ]; then
  if [ ! -s /etc/apt/keyrings/kubernetes-apt-keyring.gpg ]; then
    curl -fsSL "${K8S_APT_REPO}Release.key" | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
    sources_changed=1
  fi
  echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] ${K8S_APT_REPO} /" \
    | write_if_changed /etc/apt/sources.list.d/kubernetes.list && sources_changed=1
fi
if [ "$sources_changed" -eq 1 ]; then
  apt_get update
fi

if [ "$k8s_packages" -eq 1 ]; then
  log "containerd ${CONTAINERD_PACKAGE_VERSION}, kubelet/kubeadm/kubectl ${K8S_PACKAGE_VERSION} (held)"
  apt_get install --allow-change-held-packages --allow-downgrades \
    "containerd.io=${CONTAINERD_PACKAGE_VERSION}" \
    "kubelet=${K8S_PACKAGE_VERSION}" "kubeadm=${K8S_PACKAGE_VERSION}" "kubectl=${K8S_PACKAGE_VERSION}"
  apt-mark hold containerd.io kubelet kubeadm kubectl >/dev/null
else
  log "containerd ${CONTAINERD_PACKAGE_VERSION} (held)"
  apt_get install --allow-change-held-packages --allow-downgrades "containerd.io=${CONTAINERD_PACKAGE_VERSION}"
  apt-mark hold containerd.io >/dev/null
fi
# containerd.io bundles runc: say which, since its version decides which runc CVEs
# apply (scripts/preflight.py judges it on every node).
log "$(runc --version 2>/dev/null | awk 'NR == 1' || echo 'runc: not found')"

log "containerd: systemd cgroup driver, sandbox image ${PAUSE_IMAGE}"
# Start from containerd's own defaults (the package ships with CRI disabled),
# then set the two keys kubeadm needs, and import the drop-in directory (as
# containerd 2's default does): a GPU node's nvidia runtime lives there
# (gpu-runtime.sh), so that this file stays the same when nvidia-ctk has run.
containerd config default \
  | sed -E -e 's/^([[:space:]]*SystemdCgroup[[:space:]]*=).*/\1 true/' \
           -e "s#^([[:space:]]*sandbox_image[[:space:]]*=).*#\1 \"${PAUSE_IMAGE}\"#" \
           -e 's#^imports = \[\]$#imports = ["/etc/containerd/conf.d/*.toml"]#' \
  | write_if_changed /etc/containerd/config.toml && containerd_changed=1 || containerd_changed=0
grep -Eq '^[[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*true' /etc/containerd/config.toml \
  || die "could not set SystemdCgroup = true in /etc/containerd/config.toml"
printf 'runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\n' \
  | write_if_changed /etc/crictl.yaml || true
systemctl enable containerd >/dev/null 2>&1
if [ "$containerd_changed" -eq 1 ] || ! systemctl is-active --quiet containerd; then
  systemctl restart containerd
fi
systemctl enable kubelet >/dev/null 2>&1

if [ "$NODE_ROLE" = control-plane ] && [ "$k8s_packages" -eq 1 ]; then
  log "pulling the control-plane images for ${K8S_VERSION_TAG} ahead of kubeadm init"
  kubeadm config images pull --kubernetes-version "${K8S_VERSION_TAG}" \
    --cri-socket unix:///run/containerd/containerd.sock
fi
log "node prepared"
