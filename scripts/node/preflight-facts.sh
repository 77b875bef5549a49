#!/usr/bin/env bash
# Read-only: print what the preflight checks need to know about this node, one
# `key=value` per line. Changes nothing, and runs without sudo so that a sudo
# asking for a password is reported instead of hanging; the few root-only
# reads use `sudo -n` and say so when it fails.
# The verdicts are made in components/preflight/checks.py, for
# scripts/preflight.py and `pulumi up` alike.
#
# Inputs (environment): PORTS (space-separated TCP ports kubeadm needs free here),
#   PROBE_URLS (space-separated URLs whose reachability is reported),
#   GPU (optional: "nvidia" on a node with `gpu: nvidia`, which adds the GPU facts).
set -euo pipefail
SCRIPT_NAME=preflight-facts
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

fact() { printf '%s=%s\n' "$1" "$2"; }
# Not root: an SSH session's PATH may lack the sbin directories (swapon lives there).
PATH="$PATH:/usr/sbin:/sbin"

# First, so that the CLI can measure clock skew against the moment it asked.
fact time "$(date +%s.%N)"

if sudo -n true 2>/dev/null; then fact sudo ok; else fact sudo password-required; fi
as_root() { sudo -n "$@" 2>/dev/null; }

if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  fact os_id "${ID:-unknown}"
  fact os_version "${VERSION_ID:-unknown}"
  fact os_name "${PRETTY_NAME:-unknown}"
fi
fact hostname "$(hostname)"
fact product_uuid "$(as_root cat /sys/class/dmi/id/product_uuid || echo unreadable)"
macs=""
for iface in /sys/class/net/*; do
  name=${iface##*/}
  [ "$name" = lo ] && continue
  mac=$(cat "$iface/address" 2>/dev/null || true)
  case "$mac" in ""|00:00:00:00:00:00) continue ;; esac
  macs="$macs $mac"
done
fact macs "${macs# }"
fact cpus "$(nproc)"
fact memory_mb "$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)"
fact swap_mb "$(swapon --noheadings --bytes --show=SIZE 2>/dev/null | awk '{sum += $1} END {print int(sum / 1048576)}' || echo 0)"

listening=$(ss -Hltn 2>/dev/null | awk '{print $4}' | sed -E 's/.*:([0-9]+)$/\1/' | sort -u | tr '\n' ' ' || true)
busy=""
for port in ${PORTS:-}; do
  case " $listening " in *" $port "*) busy="$busy $port" ;; esac
done
fact ports_busy "${busy# }"

if as_root fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null; then
  fact dpkg_lock held
else
  fact dpkg_lock free
fi
unreachable=""
for url in ${PROBE_URLS:-}; do
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" 2>/dev/null || true)
  if [ -z "$code" ] || [ "$code" = 000 ]; then unreachable="$unreachable $url"; fi
done
fact unreachable_urls "${unreachable# }"

leftovers=""
for path in /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf /etc/kubernetes/manifests/kube-apiserver.yaml /var/lib/etcd/member; do
  # Root-only directories (/var/lib/etcd) hide their contents from this user.
  if as_root test -e "$path" || [ -e "$path" ]; then leftovers="$leftovers $path"; fi
done
if systemctl is-active --quiet kubelet 2>/dev/null; then leftovers="$leftovers kubelet-running"; fi
fact leftovers "${leftovers# }"

# The runc containers would run with (containerd.io bundles it); empty when there is
# none yet. Its first line reads "runc version 1.3.3".
runc_version=""
if command -v runc >/dev/null 2>&1; then
  runc_version=$(runc --version 2>/dev/null | awk 'NR == 1 {print $3}' || true)
  [ -n "$runc_version" ] || runc_version=unreadable
fi
fact runc "$runc_version"

# A control plane's certificates: `kubeadm certs check-expiration -o json`, in base64
# on one line (components/cluster/certificates.py reads it). Only root can read them
# (the kubeconfig files are 0600), so through `sudo -n`: without it the expiry is
# reported unknown (needs-root) rather than asked for. `none` on a node with no
# control plane yet; `unreadable` when kubeadm fails (an API server that does not
# answer is fine: kubeadm then reads the files alone).
cert_expiration=none
if as_root test -e /etc/kubernetes/manifests/kube-apiserver.yaml; then
  cert_expiration=$(as_root timeout 60 kubeadm certs check-expiration -o json | base64 -w0) \
    || cert_expiration=unreadable
  [ -n "$cert_expiration" ] || cert_expiration=unreadable
elif [ -e /etc/kubernetes/admin.conf ] && ! sudo -n true 2>/dev/null; then
  cert_expiration=needs-root
fi
fact cert_expiration "$cert_expiration"

# GPU nodes only: what the driver step needs, and what is there already.
if [ "${GPU:-}" = nvidia ]; then
  # `lspci -n` lines read "01:00.0 0302: 10de:20b0 (rev a1)": display controllers
  # (class 03xx) of vendor 10de. NVIDIA's audio and USB functions are not GPUs.
  if command -v lspci >/dev/null 2>&1; then
    fact gpu_devices "$(lspci -n 2>/dev/null | awk '$2 ~ /^03/ && $3 ~ /^10de:/ {n++} END {print n + 0}')"
  else
    fact gpu_devices unknown
  fi
  driver=absent
  if command -v nvidia-smi >/dev/null 2>&1; then
    driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | awk 'NR == 1' || true)
    [ -n "$driver" ] || driver=failed
  fi
  fact nvidia_driver "$driver"
  # "SecureBoot enabled" / "SecureBoot disabled"; a BIOS machine has no EFI variables.
  secure_boot=unknown
  if command -v mokutil >/dev/null 2>&1; then
    state=$(mokutil --sb-state 2>&1 || as_root mokutil --sb-state 2>&1 || true)
    case "$state" in
      *"SecureBoot enabled"*) secure_boot=enabled ;;
      *"SecureBoot disabled"*|*"not supported"*) secure_boot=disabled ;;
    esac
  elif [ ! -d /sys/firmware/efi ]; then
    secure_boot=disabled
  fi
  fact secure_boot "$secure_boot"
  if [ -d "/lib/modules/$(uname -r)/build" ]; then fact kernel_headers present; else fact kernel_headers absent; fi
  fact disk_free_mb "$(df -Pm / 2>/dev/null | awk 'NR == 2 {print $4}' || echo 0)"
fi
