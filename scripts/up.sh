#!/usr/bin/env bash
# Set up and run `pulumi up` for one stack, with Pulumi's local file backend by
# default (no Pulumi account needed).
# Usage: scripts/up.sh STACK [pulumi up arguments], e.g. scripts/up.sh lab --yes
#
# Environment:
#   PULUMI_BACKEND_URL        default file://<repo>/.pulumi-state (kept out of git)
#   PULUMI_CONFIG_PASSPHRASE  encrypts the stack's secrets; asked for if unset
#   SSH_KEY_FILE              if set, stored as the stack's secret sshPrivateKey first
set -euo pipefail
cd "$(dirname "$0")/.."

stack=${1:?usage: scripts/up.sh STACK [pulumi up arguments]}
shift
if ! command -v pulumi >/dev/null 2>&1; then
  echo "The Pulumi CLI is not installed: see https://www.pulumi.com/docs/install/" >&2
  exit 1
fi
if [ ! -f "stacks/Pulumi.${stack}.yaml" ]; then
  echo "No stack file stacks/Pulumi.${stack}.yaml: copy stacks/Pulumi.lab.yaml and edit it." >&2
  exit 1
fi

python3 -m venv venv
venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.pulumi-state}"
mkdir -p .pulumi-state
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  read -r -s -p "Passphrase for the ${stack} stack's secrets: " PULUMI_CONFIG_PASSPHRASE
  echo
  export PULUMI_CONFIG_PASSPHRASE
fi
pulumi stack select --create "$stack" --non-interactive
if [ -n "${SSH_KEY_FILE:-}" ]; then
  pulumi config set sshPrivateKey --secret --stack "$stack" -- <"$SSH_KEY_FILE"
fi
exec pulumi up --stack "$stack" "$@"
