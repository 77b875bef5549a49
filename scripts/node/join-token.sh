#!/usr/bin/env bash
# Issue a fresh, short-lived bootstrap token for one worker and print the join
# command for it. Runs on the control plane; its output is a Pulumi secret.
#
# Inputs (environment): WORKER_NAME, TOKEN_TTL.
set -euo pipefail
SCRIPT_NAME=join-token
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${WORKER_NAME:?}" "${TOKEN_TTL:?}"
kubeadm token create --ttl "$TOKEN_TTL" \
  --description "kserve-cluster: join ${WORKER_NAME}" --print-join-command
