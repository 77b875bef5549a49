#!/usr/bin/env bash
# Credentials for one control plane to join, made when it is about to join: the
# shared certificates uploaded again under a fresh certificate key (the
# kubeadm-certs Secret expires in 2 hours), and a fresh short-lived token. Prints
# the control-plane join command; runs on the first control plane; its output is
# a Pulumi secret and nothing here logs the key or the token.
#
# Inputs (environment): NODE_NAME, TOKEN_TTL.
set -euo pipefail
SCRIPT_NAME=control-plane-join-key
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_NAME:?}" "${TOKEN_TTL:?}"
key=$(kubeadm certs certificate-key)
if ! kubeadm init phase upload-certs --upload-certs --certificate-key "$key" 2>&1 | redact >&2; then
  die "uploading the control-plane certificates for ${NODE_NAME} failed (output above); check that the API server answers on this node, then re-run pulumi up."
fi
kubeadm token create --ttl "$TOKEN_TTL" \
  --description "kserve-cluster: join control plane ${NODE_NAME}" \
  --print-join-command --certificate-key "$key"
