#!/usr/bin/env bash
# One phase of restoring a stacked-etcd cluster from a snapshot, on one control
# plane. scripts/restore.py runs each phase on EVERY control plane before the
# next phase starts anywhere, the documented way (etcd.io v3.5 op-guide
# "Disaster recovery"; kubernetes.io "Operating etcd clusters for Kubernetes",
# "Restoring an etcd cluster"): all API servers and members stopped, every member
# restored from the same snapshot as a new cluster, all started again, then the
# scheduler, controller manager and kubelets restarted.
#
# PHASE (environment), with STAMP the same on every node of one restore:
#   check    sha256 and `etcdutl snapshot status` of SNAPSHOT; prints this member's
#            name=, peer=, data= and endpoint= (read from etcd.yaml)
#   stop     moves the etcd, kube-apiserver, kube-controller-manager and
#            kube-scheduler manifests to /etc/kubernetes/kserve-restore-STAMP and
#            waits until etcd and the API server have stopped
#   restore  `etcdutl snapshot restore` with NAME, INITIAL_CLUSTER, CLUSTER_TOKEN
#            and PEER_URL into <data dir>.restore-STAMP (nothing swapped yet)
#   start    swaps the restored data dir in (the old one kept as
#            <data dir>.before-restore-STAMP), puts the manifests back and
#            restarts kubelet (which restarts every static pod)
#   wait     until this member answers `etcdctl endpoint health`; with WAIT_API=1
#            also the API server's /readyz, then prints kube_system_uid=
#   abort    undoes stop and restore where start has not run: the restored copy
#            removed, the manifests put back, kubelet restarted
# Also: SNAPSHOT, SNAPSHOT_SHA256 (check, restore), HEALTH_TIMEOUT_SECONDS (300).
# Messages go to stderr; stdout carries only key=value lines.
set -euo pipefail
SCRIPT_NAME=etcd-restore
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${PHASE:?}" "${STAMP:?}"
case "$STAMP" in *[!0-9TZ]*) die "STAMP must look like 20260101T000000Z, not $STAMP" ;; esac
HEALTH_TIMEOUT_SECONDS=${HEALTH_TIMEOUT_SECONDS:-300}
ETCDCTL=${ETCDCTL:-/usr/local/bin/etcdctl}
ETCDUTL=${ETCDUTL:-/usr/local/bin/etcdutl}
MANIFESTS=/etc/kubernetes/manifests
PKI=/etc/kubernetes/pki/etcd
STATIC_PODS="etcd kube-apiserver kube-controller-manager kube-scheduler"
stash=/etc/kubernetes/kserve-restore-$STAMP
say() { log "$@" >&2; }

# etcd.yaml is in the manifests directory, or in the stash once stopped.
manifest=$MANIFESTS/etcd.yaml
[ -f "$manifest" ] || manifest=$stash/etcd.yaml
[ -f "$manifest" ] || die "no $MANIFESTS/etcd.yaml: not a kubeadm control plane with stacked etcd."
flag() { sed -n "s/^ *- --$1=//p" "$manifest" | head -n1; }
name=$(flag name) peer=$(flag initial-advertise-peer-urls) data=$(flag data-dir)
if [ -z "$name" ] || [ -z "$peer" ] || [ -z "$data" ]; then
  die "could not read --name, --initial-advertise-peer-urls and --data-dir from $manifest."
fi
case "$peer" in *,*) die "etcd advertises several peer URLs ($peer): not a layout this script restores." ;; esac
# Where the member answers: the client URL etcd.yaml advertises (the node's
# address, in the server certificate), or kubeadm's listener on 127.0.0.1.
endpoint=$(flag advertise-client-urls)
endpoint=${endpoint%%,*}
endpoint=${endpoint:-https://127.0.0.1:2379}
restored="$data.restore-$STAMP"
previous="$data.before-restore-$STAMP"

check_snapshot() {
  : "${SNAPSHOT:?}" "${SNAPSHOT_SHA256:?}"
  [ -x "$ETCDUTL" ] || die "$ETCDUTL is missing: run pulumi up first (the backup timer installs it)."
  printf '%s  %s\n' "$SNAPSHOT_SHA256" "$SNAPSHOT" | sha256sum -c --quiet - \
    || die "$SNAPSHOT does not match its sha256: nothing was changed."
  "$ETCDUTL" snapshot status "$SNAPSHOT" -w json >/dev/null \
    || die "etcdutl snapshot status refused $SNAPSHOT: nothing was changed."
}

put_back() {
  local pod
  for pod in $STATIC_PODS; do
    if [ -f "$stash/$pod.yaml" ]; then mv -f "$stash/$pod.yaml" "$MANIFESTS/$pod.yaml"; fi
  done
  rmdir "$stash" 2>/dev/null || true
}

case "$PHASE" in
  check)
    check_snapshot
    printf 'name=%s\npeer=%s\ndata=%s\nendpoint=%s\n' "$name" "$peer" "$data" "$endpoint"
    ;;
  stop)
    say "stopping the control plane: manifests moved to $stash"
    install -d -m 0700 "$stash"
    for pod in $STATIC_PODS; do
      if [ -f "$MANIFESTS/$pod.yaml" ]; then mv "$MANIFESTS/$pod.yaml" "$stash/$pod.yaml"; fi
    done
    waited=0
    while crictl ps -q --name '^(etcd|kube-apiserver)$' 2>/dev/null | grep -q .; do
      [ "$waited" -ge 120 ] && die "etcd or kube-apiserver still runs 120s after its manifest was moved."
      sleep 2; waited=$((waited + 2))
    done
    say "etcd and the API server have stopped"
    ;;
  restore)
    : "${NAME:?}" "${INITIAL_CLUSTER:?}" "${CLUSTER_TOKEN:?}" "${PEER_URL:?}"
    check_snapshot
    # The plan was made from what `check` printed: refuse if etcd.yaml changed since.
    [ "$NAME" = "$name" ] || die "this member is $name in $manifest, the restore plan says $NAME."
    [ "$PEER_URL" = "$peer" ] || die "this member's peer URL is $peer in $manifest, the plan says $PEER_URL."
    [ -f "$stash/etcd.yaml" ] || die "etcd was not stopped by this restore (no $stash/etcd.yaml): run the stop phase first."
    rm -rf "$restored"
    say "etcdutl snapshot restore --name $NAME --initial-cluster $INITIAL_CLUSTER into $restored"
    "$ETCDUTL" snapshot restore "$SNAPSHOT" --name "$NAME" \
      --initial-cluster "$INITIAL_CLUSTER" --initial-cluster-token "$CLUSTER_TOKEN" \
      --initial-advertise-peer-urls "$PEER_URL" --data-dir "$restored" >&2
    chmod 0700 "$restored"
    ;;
  start)
    if [ -d "$restored" ]; then
      if [ -e "$data" ]; then mv "$data" "$previous"; fi
      mv "$restored" "$data"
      say "restored data in $data; the previous data dir is kept as $previous"
    elif [ ! -d "$previous" ]; then
      die "no restored data dir $restored: run the restore phase first."
    fi
    put_back
    systemctl restart kubelet
    printf 'previous_data_dir=%s\n' "$previous"
    ;;
  abort)
    [ -d "$previous" ] && die "the data dir was already swapped ($previous kept): not undoing; start the members."
    rm -rf "$restored"
    put_back
    systemctl restart kubelet || true
    say "restore undone on this node: manifests back, data dir untouched"
    ;;
  wait)
    deadline=$((SECONDS + HEALTH_TIMEOUT_SECONDS))
    until ETCDCTL_API=3 "$ETCDCTL" --endpoints "$endpoint" --cacert "$PKI/ca.crt" \
        --cert "$PKI/healthcheck-client.crt" --key "$PKI/healthcheck-client.key" \
        endpoint health >/dev/null 2>&1; do
      [ "$SECONDS" -lt "$deadline" ] || die "etcd is not healthy ${HEALTH_TIMEOUT_SECONDS}s after the restore: see crictl logs for the etcd container."
      sleep 3
    done
    say "etcd member $name is healthy"
    if [ "${WAIT_API:-0}" = 1 ]; then
      until kubectl_admin get --raw /readyz >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "the API server is not ready ${HEALTH_TIMEOUT_SECONDS}s after the restore."
        sleep 3
      done
      say "the API server is ready"
      printf 'kube_system_uid=%s\n' "$(kubectl_admin get namespace kube-system -o jsonpath='{.metadata.uid}')"
    fi
    ;;
  *) die "PHASE must be check, stop, restore, start, wait or abort, not $PHASE" ;;
esac
