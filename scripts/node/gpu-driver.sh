#!/usr/bin/env bash
# The NVIDIA driver on a GPU node: Ubuntu's nvidia-driver-<branch> and
# nvidia-utils-<branch>, held, and the kernel headers DKMS builds the module
# against. Runs after prepare.sh and before the node joins.
#
# It never reboots. When the driver is installed but not loaded (a fresh
# install beside nouveau, or a branch change under a running module), it stops
# and says how to drain and reboot the node; the next `pulumi up` then finds the
# driver loaded and goes on. Safe to run again: apt installs nothing twice.
#
# Inputs (environment): DRIVER_BRANCH (e.g. 580-server), NODE_NAME.
set -euo pipefail
SCRIPT_NAME=gpu-driver
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${DRIVER_BRANCH:?}" "${NODE_NAME:?}"
driver_package="nvidia-driver-${DRIVER_BRANCH}"
utils_package="nvidia-utils-${DRIVER_BRANCH}"
branch_major="${DRIVER_BRANCH%%-*}"

# Sets `version` to the driver's version as nvidia-smi reports it (e.g. 580.95.05),
# or to nothing when no driver answers; `smi_said` then holds why. nvidia-smi prints
# its failures on stdout ("NVIDIA-SMI has failed because it couldn't communicate with
# the NVIDIA driver ...", exit 9; "Failed to initialize NVML: Driver/library version
# mismatch", exit 18), so its status decides, never its output alone.
read_driver_version() {
  version='' smi_said='nvidia-smi is not installed'
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  local out
  if out=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>&1); then
    version=$(awk 'NR == 1' <<<"$out")
  else
    smi_said="nvidia-smi: $(awk 'NR == 1' <<<"$out")"
  fi
}

reboot_needed() {
  die "the NVIDIA driver ${DRIVER_BRANCH} is installed on ${NODE_NAME} but $1; the node must be rebooted, which pulumi up never does by itself. Do it node by node: if ${NODE_NAME} is already in the cluster, run \`kubectl drain ${NODE_NAME} --ignore-daemonsets --delete-emptydir-data\` first; then \`sudo reboot\` on the node; once it is back (and \`kubectl uncordon ${NODE_NAME}\` if you drained it), run pulumi up again. With Secure Boot on, the first boot asks on the console to enroll the DKMS signing key (see scripts/preflight.py's gpu check)."
}

log "driver packages ${driver_package} ${utils_package} (held)"
# Another branch held from an earlier run would block the change: release it.
held_other=$(apt-mark showhold | grep -E '^nvidia-(driver|utils)-[0-9]' | grep -vx -e "$driver_package" -e "$utils_package" || true)
if [ -n "$held_other" ]; then
  log "releasing the hold on another driver branch: $(echo "$held_other" | tr '\n' ' ')"
  # shellcheck disable=SC2086 # one package name per word
  apt-mark unhold $held_other >/dev/null
fi
headers="linux-headers-$(uname -r)"
packages=("$driver_package" "$utils_package")
if [ ! -d "/lib/modules/$(uname -r)/build" ]; then
  log "kernel headers for DKMS: ${headers}"
  packages+=("$headers")
fi
apt_get update
apt_get install --allow-change-held-packages "${packages[@]}"
apt-mark hold "$driver_package" "$utils_package" >/dev/null

read_driver_version
if [ -z "$version" ] && ! grep -q '^nouveau ' /proc/modules; then
  # A first install with no other driver in the way loads without a reboot.
  log "loading the nvidia kernel module"
  modprobe nvidia 2>/dev/null || true
  read_driver_version
fi
if [ -z "$version" ]; then
  reboot_needed "not loaded (${smi_said})"
fi
case "$version" in
  "${branch_major}".*) log "driver ${version} loaded" ;;
  *) reboot_needed "the running kernel still has driver ${version} loaded" ;;
esac
