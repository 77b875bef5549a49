#!/usr/bin/env bash
# Issue a kubeconfig for one project member: a client certificate signed by the
# cluster CA, CN the member's name, O their projects (kubeadm kubeconfig user).
# Runs on the control plane; its output is a Pulumi secret and never logged.
# Safe to run twice: each run issues a fresh certificate and changes nothing else.
#
# Inputs (environment): MEMBER, ORGANIZATIONS (comma-separated), VALIDITY (e.g. 2160h).
# stdin: the kubeadm ClusterConfiguration to use (--config).
set -euo pipefail
SCRIPT_NAME=issue-member-kubeconfig
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${MEMBER:?}" "${ORGANIZATIONS:?}" "${VALIDITY:?}"
[ -s /etc/kubernetes/pki/ca.key ] || die "/etc/kubernetes/pki/ca.key is missing: this is not an initialised control plane."
umask 077
config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat >"$config"
kubeadm kubeconfig user --config "$config" --client-name "$MEMBER" \
  --org "$ORGANIZATIONS" --validity-period "$VALIDITY"
