#!/usr/bin/env bash
# Restore this control plane's stacked etcd from a snapshot, the documented way
# (kubernetes.io "Operating etcd clusters for Kubernetes", restoring): stop the
# control-plane static pods by moving their manifests aside, `etcdutl snapshot
# restore` with this member's name, initial cluster and peer URL into a new
# data directory, swap it in for /var/lib/etcd (the old one is kept), put the
# manifests back, restart kubelet, wait until etcd and the API server are healthy.
# One control plane only: with several members each must be restored from the
# same snapshot at the same time, which this script does not do.
#
# Inputs (environment): SNAPSHOT (a file on this node), SNAPSHOT_SHA256,
# HEALTH_TIMEOUT_SECONDS (default 300).
set -euo pipefail
SCRIPT_NAME=etcd-restore
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${SNAPSHOT:?}" "${SNAPSHOT_SHA256:?}"
HEALTH_TIMEOUT_SECONDS=${HEALTH_TIMEOUT_SECONDS:-300}
ETCDCTL=${ETCDCTL:-/usr/local/bin/etcdctl}
ETCDUTL=${ETCDUTL:-/usr/local/bin/etcdutl}
MANIFESTS=/etc/kubernetes/manifests
PKI=/etc/kubernetes/pki/etcd
STATIC_PODS="etcd kube-apiserver kube-controller-manager kube-scheduler"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
stash=/etc/kubernetes/kserve-restore-$stamp

[ -x "$ETCDUTL" ] || die "$ETCDUTL is missing: run pulumi up first (the backup timer installs it)."
[ -f "$MANIFESTS/etcd.yaml" ] || die "no $MANIFESTS/etcd.yaml: not a kubeadm control plane with stacked etcd."
printf '%s  %s\n' "$SNAPSHOT_SHA256" "$SNAPSHOT" | sha256sum -c --quiet - \
  || die "$SNAPSHOT does not match its sha256: nothing was changed."
"$ETCDUTL" snapshot status "$SNAPSHOT" -w json >/dev/null \
  || die "etcdutl snapshot status refused $SNAPSHOT: nothing was changed."

flag() { sed -n "s/^ *- --$1=//p" "$MANIFESTS/etcd.yaml" | head -n1; }
name=$(flag name) peer=$(flag initial-advertise-peer-urls) data=$(flag data-dir)
if [ -z "$name" ] || [ -z "$peer" ] || [ -z "$data" ]; then
  die "could not read --name, --initial-advertise-peer-urls and --data-dir from $MANIFESTS/etcd.yaml."
fi
case "$peer" in *,*) die "etcd advertises several peer URLs ($peer): not a layout this script restores." ;; esac
members=$(sed -n 's/^ *- --initial-cluster=//p' "$MANIFESTS/etcd.yaml" | head -n1)
# Where etcd answers once restored: the client URL etcd.yaml advertises (the node's
# address, in the server certificate), or kubeadm's other listener on 127.0.0.1.
endpoint=$(flag advertise-client-urls)
endpoint=${endpoint%%,*}
endpoint=${endpoint:-https://127.0.0.1:2379}
case "$members" in *,*) die "etcd.yaml names several members ($members): restoring more than one control plane is not supported yet." ;; esac

put_back() {
  local pod
  for pod in $STATIC_PODS; do
    if [ -f "$stash/$pod.yaml" ]; then mv -f "$stash/$pod.yaml" "$MANIFESTS/$pod.yaml"; fi
  done
  return 0
}
on_error() {
  log "restore failed: putting the static pod manifests back (data dir: $data)" >&2
  put_back
  systemctl restart kubelet || true
}
trap on_error ERR

log "stopping the control plane: manifests moved to $stash"
install -d -m 0700 "$stash"
for pod in $STATIC_PODS; do
  if [ -f "$MANIFESTS/$pod.yaml" ]; then mv "$MANIFESTS/$pod.yaml" "$stash/$pod.yaml"; fi
done
waited=0
while crictl ps -q --name '^(etcd|kube-apiserver)$' 2>/dev/null | grep -q .; do
  [ "$waited" -ge 120 ] && { log "etcd or kube-apiserver still runs after 120s" >&2; false; }
  sleep 2; waited=$((waited + 2))
done

restored="$data.restore-$stamp"
log "etcdutl snapshot restore --name $name --initial-cluster $name=$peer into $restored"
"$ETCDUTL" snapshot restore "$SNAPSHOT" --name "$name" \
  --initial-cluster "$name=$peer" --initial-advertise-peer-urls "$peer" \
  --data-dir "$restored" >&2
chmod 0700 "$restored"
mv "$data" "$data.before-restore-$stamp"
mv "$restored" "$data"
log "the previous data dir is kept as $data.before-restore-$stamp"

put_back
systemctl restart kubelet
trap - ERR

deadline=$((SECONDS + HEALTH_TIMEOUT_SECONDS))
until ETCDCTL_API=3 "$ETCDCTL" --endpoints "$endpoint" --cacert "$PKI/ca.crt" \
    --cert "$PKI/healthcheck-client.crt" --key "$PKI/healthcheck-client.key" \
    endpoint health >/dev/null 2>&1; do
  [ "$SECONDS" -lt "$deadline" ] || die "etcd is not healthy ${HEALTH_TIMEOUT_SECONDS}s after the restore: see crictl logs for the etcd container."
  sleep 3
done
log "etcd is healthy"
until kubectl_admin get --raw /readyz >/dev/null 2>&1; do
  [ "$SECONDS" -lt "$deadline" ] || die "the API server is not ready ${HEALTH_TIMEOUT_SECONDS}s after the restore."
  sleep 3
done
log "the API server is ready"
printf 'kube_system_uid=%s\n' "$(kubectl_admin get namespace kube-system -o jsonpath='{.metadata.uid}')"
printf 'previous_data_dir=%s\n' "$data.before-restore-$stamp"
