#!/usr/bin/env bash
# Print the admin kubeconfig. Its output is a Pulumi secret and never logged.
set -euo pipefail
SCRIPT_NAME=read-kubeconfig
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -s /etc/kubernetes/admin.conf ] || die "/etc/kubernetes/admin.conf is missing: kubeadm init has not completed on this node."
cat /etc/kubernetes/admin.conf
