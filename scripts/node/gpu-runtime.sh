#!/usr/bin/env bash
# containerd's `nvidia` runtime, which the RuntimeClass `nvidia` names: written
# by nvidia-ctk (a drop-in under /etc/containerd/conf.d and an `imports` line in
# config.toml), with runc's options copied, so SystemdCgroup stays true. Then
# containerd restarts, before the node joins. Safe to run again: containerd
# restarts only when its configuration changed.
#
# Inputs (environment): none.
set -euo pipefail
SCRIPT_NAME=gpu-runtime
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Before nvidia-ctk's first run there is no conf.d (the glob stays unexpanded): cat's
# failure must not stop the script (pipefail).
config_state() {
  { cat /etc/containerd/config.toml /etc/containerd/conf.d/*.toml 2>/dev/null || true; } | sha256sum
}

before=$(config_state)
log "nvidia-ctk runtime configure --runtime=containerd"
nvidia-ctk runtime configure --runtime=containerd

# The merged configuration containerd will run with: the nvidia runtime must be
# there, with the systemd cgroup driver kubelet uses (a mismatch breaks pods).
merged=$(containerd config dump)
if ! grep -q 'containerd\.runtimes\.nvidia\]' <<<"$merged"; then
  die "containerd has no nvidia runtime after nvidia-ctk; check /etc/containerd/config.toml and /etc/containerd/conf.d/."
fi
systemd_cgroup=$(awk '
  /^[[:space:]]*\[/ { in_nvidia = ($0 ~ /containerd\.runtimes\.nvidia\.options\]/) }
  in_nvidia && /^[[:space:]]*SystemdCgroup[[:space:]]*=/ { print $3 }' <<<"$merged")
if [ "$systemd_cgroup" != true ]; then
  die "containerd's nvidia runtime does not use the systemd cgroup driver (SystemdCgroup = ${systemd_cgroup:-unset}); kubelet does. Set SystemdCgroup = true in /etc/containerd/config.toml (runc's options) and run pulumi up again."
fi

if [ "$before" != "$(config_state)" ] || ! systemctl is-active --quiet containerd; then
  log "restarting containerd"
  systemctl restart containerd
fi
log "containerd has the nvidia runtime (SystemdCgroup = true)"
