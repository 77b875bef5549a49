# Shared helpers for the node scripts. Each node script sources this file; when a
# script is sent to a node over SSH, components/cluster/node_scripts.py inlines it
# in place of the `source` line, so nothing has to be copied to the node first.
# shellcheck shell=bash

log() { printf '[%s] %s\n' "${SCRIPT_NAME:-node}" "$*"; }

die() {
  printf '[%s] ERROR: %s\n' "${SCRIPT_NAME:-node}" "$*" >&2
  exit 1
}

# Replace anything shaped like a bootstrap token, a discovery hash or a certificate
# key (kubeadm prints it alone on a line after upload-certs), so that
# kubeadm's chatty output can be logged without leaking credentials.
redact() {
  sed -E -e 's/[a-z0-9]{6}\.[a-z0-9]{16}/<redacted-token>/g' \
         -e 's/sha256:[0-9a-f]{64}/sha256:<redacted>/g' \
         -e 's/(certificate-key )[0-9a-f]{64}/\1<redacted>/g' \
         -e 's/^[0-9a-f]{64}$/<redacted-certificate-key>/'
}

# A fresh Ubuntu runs unattended-upgrades at boot and holds the dpkg lock for
# minutes: wait for it instead of failing (apt also waits, via DPkg::Lock::Timeout).
DPKG_LOCK_TIMEOUT="${DPKG_LOCK_TIMEOUT:-900}"
wait_for_dpkg_lock() {
  local waited=0
  while fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock >/dev/null 2>&1; do
    if [ "$waited" -ge "$DPKG_LOCK_TIMEOUT" ]; then
      die "the dpkg lock is still held after ${waited}s (unattended-upgrades?). Wait for it to finish or stop it, then re-run pulumi up."
    fi
    [ $((waited % 30)) -eq 0 ] && log "waiting for the dpkg lock (held by another apt/dpkg process)..."
    sleep 2
    waited=$((waited + 2))
  done
}

# apt waits for the dpkg lock itself (DPkg::Lock::Timeout), but not for the
# lists lock that `apt-get update` takes, and fuser may be missing: so wait,
# then retry a few times before giving up.
apt_get() {
  local attempt
  for attempt in 1 2 3 4 5; do
    wait_for_dpkg_lock
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$DPKG_LOCK_TIMEOUT" \
        -o Dpkg::Options::=--force-confold -y -q "$@"; then
      return 0
    fi
    log "apt-get $1 failed (attempt ${attempt} of 5); retrying in 10s"
    sleep 10
  done
  die "apt-get $* failed 5 times. Check the node's network and apt sources, then re-run pulumi up."
}

# Write stdin to FILE only if the content differs; return 0 when it changed.
write_if_changed() {
  local file=$1 mode=${2:-0644} tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$file" ] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    return 1
  fi
  install -D -m "$mode" "$tmp" "$file"
  rm -f "$tmp"
  return 0
}

kubectl_admin() { kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }
