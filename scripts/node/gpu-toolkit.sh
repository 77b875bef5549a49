#!/usr/bin/env bash
# The NVIDIA Container Toolkit from NVIDIA's apt repository, at the pinned
# version, held: it lets containerd hand a pod the GPUs the device plugin gave
# it. Runs after the driver step. Safe to run again.
#
# Inputs (environment): TOOLKIT_APT_REPO (ends with /), TOOLKIT_GPGKEY_URL,
#   TOOLKIT_VERSION (the apt version pinned in components/versions.py), TOOLKIT_PACKAGES (space-separated).
set -euo pipefail
SCRIPT_NAME=gpu-toolkit
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${TOOLKIT_APT_REPO:?}" "${TOOLKIT_GPGKEY_URL:?}" "${TOOLKIT_VERSION:?}" "${TOOLKIT_PACKAGES:?}"
keyring=/etc/apt/keyrings/nvidia-container-toolkit.gpg

install -d -m 0755 /etc/apt/keyrings
sources_changed=0
if [ ! -s "$keyring" ]; then
  log "NVIDIA's repository key from ${TOOLKIT_GPGKEY_URL}"
  curl -fsSL "$TOOLKIT_GPGKEY_URL" | gpg --dearmor --yes -o "$keyring"
  sources_changed=1
fi
# The list NVIDIA publishes has this one line; apt fills in $(ARCH) itself.
# shellcheck disable=SC2016 # $(ARCH) is apt's, not the shell's
printf 'deb [signed-by=%s] %s$(ARCH) /\n' "$keyring" "$TOOLKIT_APT_REPO" \
  | write_if_changed /etc/apt/sources.list.d/nvidia-container-toolkit.list && sources_changed=1
if [ "$sources_changed" -eq 1 ] || ! apt-cache show "nvidia-container-toolkit=${TOOLKIT_VERSION}" >/dev/null 2>&1; then
  apt_get update
fi

read -r -a names <<<"$TOOLKIT_PACKAGES"
pinned=()
for name in "${names[@]}"; do pinned+=("${name}=${TOOLKIT_VERSION}"); done
log "NVIDIA Container Toolkit ${TOOLKIT_VERSION} (held)"
apt_get install --allow-change-held-packages --allow-downgrades "${pinned[@]}"
apt-mark hold "${names[@]}" >/dev/null
log "$(nvidia-ctk --version 2>/dev/null | awk 'NR == 1' || echo 'nvidia-ctk: not found')"
