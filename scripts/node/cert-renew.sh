#!/usr/bin/env bash
# The renewal itself, run by kserve-cert-renewal.service (its timer) as root.
# Installed as /usr/local/sbin/kserve-cert-renew by cert-renewal.sh, with lib.sh
# inlined, so it needs nothing from this repository on the node.
#
# When the first of the certificates `kubeadm certs renew all` renews has fewer
# than RENEW_BEFORE_DAYS days left (or with FORCE=1):
#   1. kubeadm certs renew all (with the config this program wrote at init, so a
#      changed kubernetes.certificateValidityDays applies; the cluster's
#      kubeadm-config ConfigMap otherwise);
#   2. restart the control-plane static pods the documented way: move their
#      manifests out of /etc/kubernetes/manifests, wait until the kubelet has
#      stopped them (at least its 20 s fileCheckFrequency), move them back and
#      wait for the API server's /readyz;
#   3. refresh the login user's copy of admin.conf (renew all re-issued the
#      client certificate inside /etc/kubernetes/admin.conf itself).
# The CAs are not renewed (kubeadm does not renew them).
#
# Inputs (environment): RENEW_BEFORE_DAYS, LOGIN_USER; FORCE=1 renews now.
#   KUBE_DIR and STOP_WAIT_SECONDS (/etc/kubernetes and 20) only for the tests.
set -euo pipefail
SCRIPT_NAME=cert-renew
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${RENEW_BEFORE_DAYS:?}" "${LOGIN_USER:?}"
KUBE=${KUBE_DIR:-/etc/kubernetes}
PKI=$KUBE/pki
MANIFESTS=$KUBE/manifests
ASIDE=$KUBE/manifests-renewing
INIT_CONFIG=$KUBE/kubeadm-init.yaml

# What `kubeadm certs renew all` renews: leaf certificates and the client
# certificates embedded in the kubeconfig files (a joined control plane has no
# super-admin.conf; missing files are skipped).
CERT_FILES="$PKI/apiserver.crt $PKI/apiserver-kubelet-client.crt $PKI/apiserver-etcd-client.crt
$PKI/front-proxy-client.crt $PKI/etcd/server.crt $PKI/etcd/peer.crt $PKI/etcd/healthcheck-client.crt"
KUBECONFIGS="$KUBE/admin.conf $KUBE/super-admin.conf $KUBE/controller-manager.conf $KUBE/scheduler.conf"

certificate_of() {  # print the PEM certificate of a .crt or a kubeconfig file
  case "$1" in
    *.conf) awk '/client-certificate-data:/ {print $2; exit}' "$1" | base64 -d ;;
    *) cat "$1" ;;
  esac
}

# Prints "FILE NOT_AFTER" for the first certificate due within the window.
first_due() {
  local window=$(( RENEW_BEFORE_DAYS * 86400 )) file
  for file in $CERT_FILES $KUBECONFIGS; do
    [ -f "$file" ] || continue
    if ! certificate_of "$file" | openssl x509 -noout -checkend "$window" >/dev/null 2>&1; then
      printf '%s %s\n' "$file" "$(certificate_of "$file" | openssl x509 -noout -enddate 2>/dev/null | cut -d= -f2)"
      return 0
    fi
  done
  return 1
}

[ -f "$MANIFESTS/kube-apiserver.yaml" ] || [ -d "$ASIDE" ] \
  || die "no control plane here ($MANIFESTS/kube-apiserver.yaml is missing): nothing to renew."

# A run that stopped while the manifests were aside puts them back first.
if [ -d "$ASIDE" ]; then
  log "manifests left aside by an earlier run: moving them back"
  mv "$ASIDE"/*.yaml "$MANIFESTS"/ 2>/dev/null || true
  rmdir "$ASIDE"
fi

if due=$(first_due); then
  log "renewing: ${due%% *} expires ${due#* } (within $RENEW_BEFORE_DAYS days)"
elif [ "${FORCE:-0}" = 1 ]; then
  log "renewing now (FORCE=1)"
else
  log "nothing to renew: every certificate has more than $RENEW_BEFORE_DAYS days left"
  exit 0
fi

config_args=()
[ -f "$INIT_CONFIG" ] && config_args=(--config "$INIT_CONFIG")
kubeadm certs renew all "${config_args[@]}" || die "kubeadm certs renew all failed (output above); the old certificates are still in place."

running() { command -v crictl >/dev/null 2>&1 && [ -n "$(crictl ps -q --name "$1" 2>/dev/null)" ]; }

components=""
mkdir -p "$ASIDE"
for manifest in "$MANIFESTS"/*.yaml; do
  [ -e "$manifest" ] || continue
  components="$components $(basename "$manifest" .yaml)"
  mv "$manifest" "$ASIDE"/
done
log "restarting the static pods:$components"
# The kubelet looks at the directory every 20 s (fileCheckFrequency).
sleep "${STOP_WAIT_SECONDS:-20}"
for _ in $(seq 1 40); do
  busy=""
  for component in $components; do
    if running "$component"; then busy="$busy $component"; fi
  done
  [ -z "$busy" ] && break
  sleep 3
done
[ -z "${busy:-}" ] || log "still running after 2 minutes:$busy (moving the manifests back anyway)"
mv "$ASIDE"/*.yaml "$MANIFESTS"/
rmdir "$ASIDE"

ready=""
for _ in $(seq 1 60); do
  if kubectl --kubeconfig "$KUBE/admin.conf" get --raw /readyz >/dev/null 2>&1; then ready=yes; break; fi
  sleep 5
done
[ -n "$ready" ] || die "the API server is not ready 5 minutes after the restart: check crictl ps and the kubelet's log (journalctl -u kubelet)."

home=$(getent passwd "$LOGIN_USER" | cut -d: -f6 || true)
if [ -n "$home" ] && [ "$LOGIN_USER" != root ] && [ -d "$home/.kube" ]; then
  install -m 0600 -o "$LOGIN_USER" "$KUBE/admin.conf" "$home/.kube/config"
fi
log "renewed; admin.conf now valid until $(certificate_of "$KUBE/admin.conf" | openssl x509 -noout -enddate | cut -d= -f2)"
