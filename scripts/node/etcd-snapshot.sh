#!/usr/bin/env bash
# Take one etcd snapshot on this control plane: `etcdctl snapshot save` with
# etcd's healthcheck client certificate, checked with `etcdutl snapshot status`,
# its sha256 recorded next to it, the newest KEEP kept, and a copy on NFS when
# one is configured (a failed copy is a warning: the local snapshot stays).
#
# Installed as /usr/local/sbin/kserve-etcd-snapshot by etcd-backup-install.sh
# (the systemd timer runs it) and run directly by scripts/backup.py.
# Inputs: /etc/kserve-cluster/etcd-backup.env (KEEP, SNAPSHOT_DIR, NFS_SERVER,
# NFS_PATH), or the same names in the environment, which win.
# Prints key=value lines on stdout (snapshot, sha256, size, node, nfs); progress
# goes to stderr. Snapshots hold every Secret: directory 0700, files 0600.
set -euo pipefail
SCRIPT_NAME=etcd-snapshot
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BACKUP_CONF=${BACKUP_CONF:-/etc/kserve-cluster/etcd-backup.env}
given_keep=${KEEP:-} given_dir=${SNAPSHOT_DIR:-}
given_server=${NFS_SERVER-unset} given_path=${NFS_PATH-unset}
if [ -f "$BACKUP_CONF" ]; then
  # shellcheck source=/dev/null
  . "$BACKUP_CONF"
fi
KEEP=${given_keep:-${KEEP:-12}}
SNAPSHOT_DIR=${given_dir:-${SNAPSHOT_DIR:-/var/lib/kserve-cluster/etcd-snapshots}}
[ "$given_server" = unset ] || NFS_SERVER=$given_server
[ "$given_path" = unset ] || NFS_PATH=$given_path
NFS_SERVER=${NFS_SERVER:-} NFS_PATH=${NFS_PATH:-}
ETCDCTL=${ETCDCTL:-/usr/local/bin/etcdctl}
ETCDUTL=${ETCDUTL:-/usr/local/bin/etcdutl}
ETCD_PKI=${ETCD_PKI:-/etc/kubernetes/pki/etcd}
# kubeadm's etcd listens on 127.0.0.1 and on the node's address, the one etcd.yaml
# advertises (in the server certificate; the only one the SSH lab's members have).
advertised=$(sed -n 's/^ *- --advertise-client-urls=//p' /etc/kubernetes/manifests/etcd.yaml 2>/dev/null | head -n1 || true)
ETCD_ENDPOINT=${ETCD_ENDPOINT:-${advertised%%,*}}
ETCD_ENDPOINT=${ETCD_ENDPOINT:-https://127.0.0.1:2379}
MOUNT=${MOUNT:-mount}
UMOUNT=${UMOUNT:-umount}
NODE_NAME=${NODE_NAME:-$(hostname -s)}

case "$KEEP" in ''|*[!0-9]*|0) die "KEEP must be a whole number >= 1, not '$KEEP'" ;; esac
[ -x "$ETCDCTL" ] || die "$ETCDCTL is missing: re-run pulumi up (etcd-backup-install.sh installs it)."
[ -x "$ETCDUTL" ] || die "$ETCDUTL is missing: re-run pulumi up (etcd-backup-install.sh installs it)."

warn() { printf '[%s] WARNING: %s\n' "$SCRIPT_NAME" "$*" >&2; }

# Keep the newest $2 snapshots in directory $1 (names sort by time), with their .sha256.
prune() {
  local dir=$1 keep=$2 all=() i drop
  mapfile -t all < <(find "$dir" -maxdepth 1 -type f -name 'etcd-*.db' -printf '%f\n' | LC_ALL=C sort)
  drop=$(( ${#all[@]} - keep ))
  for (( i = 0; i < drop; i++ )); do
    rm -f -- "$dir/${all[i]}" "$dir/${all[i]}.sha256"
    log "removed ${all[i]} (keeping the newest $keep)" >&2
  done
}

umask 077
install -d -m 0700 "$SNAPSHOT_DIR"
name="etcd-$(date -u +%Y%m%dT%H%M%SZ)-${NODE_NAME}.db"
while [ -e "$SNAPSHOT_DIR/$name" ]; do sleep 1; name="etcd-$(date -u +%Y%m%dT%H%M%SZ)-${NODE_NAME}.db"; done
partial="$SNAPSHOT_DIR/.partial-$name"
trap 'rm -f -- "$partial" "$partial.part"' EXIT

log "etcdctl snapshot save ($ETCD_ENDPOINT)" >&2
if ! ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ETCD_ENDPOINT" --cacert "$ETCD_PKI/ca.crt" \
    --cert "$ETCD_PKI/healthcheck-client.crt" --key "$ETCD_PKI/healthcheck-client.key" \
    --command-timeout 300s snapshot save "$partial" >&2; then
  die "etcdctl snapshot save failed (output above): is etcd running (crictl ps --name etcd)?"
fi
if ! status=$("$ETCDUTL" snapshot status "$partial" -w json); then
  die "etcdutl snapshot status refused the new snapshot: it is not kept."
fi
chmod 0600 "$partial"
mv -- "$partial" "$SNAPSHOT_DIR/$name"
sum=$(sha256sum "$SNAPSHOT_DIR/$name" | cut -d' ' -f1)
printf '%s  %s\n' "$sum" "$name" >"$SNAPSHOT_DIR/$name.sha256"
size=$(stat -c %s "$SNAPSHOT_DIR/$name")
log "saved $SNAPSHOT_DIR/$name ($size bytes, sha256 $sum; status $status)" >&2
prune "$SNAPSHOT_DIR" "$KEEP"

nfs=off
if [ -n "$NFS_SERVER" ]; then
  nfs=failed
  mnt=$(mktemp -d)
  # Mounted read-write only for the copy, and never left mounted.
  if "$MOUNT" -t nfs -o rw,nosuid,nodev,noexec,soft,timeo=100,retrans=2 \
      "$NFS_SERVER:$NFS_PATH" "$mnt" >&2; then
    target="$mnt/$NODE_NAME"
    if install -d -m 0700 "$target" \
        && cp -- "$SNAPSHOT_DIR/$name" "$target/.partial-$name" \
        && mv -- "$target/.partial-$name" "$target/$name" \
        && cp -- "$SNAPSHOT_DIR/$name.sha256" "$target/$name.sha256" \
        && (cd "$target" && sha256sum -c --quiet "$name.sha256" >&2); then
      prune "$target" "$KEEP"
      nfs=copied
      log "copied to $NFS_SERVER:$NFS_PATH/$NODE_NAME/$name" >&2
    else
      rm -f -- "$target/.partial-$name"
      warn "copying to $NFS_SERVER:$NFS_PATH failed; the local snapshot $SNAPSHOT_DIR/$name is kept."
    fi
    "$UMOUNT" "$mnt" >&2 || warn "could not unmount $mnt"
  else
    warn "could not mount $NFS_SERVER:$NFS_PATH; the local snapshot $SNAPSHOT_DIR/$name is kept."
  fi
  rmdir "$mnt" 2>/dev/null || true
fi

# What `lastSnapshot` would show: kept next to the snapshots for the operator.
{
  printf 'snapshot=%s\n' "$SNAPSHOT_DIR/$name"
  printf 'time=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'size=%s\nsha256=%s\nnode=%s\nnfs=%s\n' "$size" "$sum" "$NODE_NAME" "$nfs"
} | tee "$SNAPSHOT_DIR/last"
