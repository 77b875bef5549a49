#!/usr/bin/env bash
# Set up and run `pulumi up` for one stack, with Pulumi's local file backend by
# default (no Pulumi account needed). Its inputs are checked first, all at once,
# before the virtualenv is built or anything is asked.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/up.sh STACK [pulumi up arguments]
       e.g. scripts/up.sh lab --yes

Runs `pulumi up` for stacks/Pulumi.STACK.yaml, after setting up venv/.

Environment:
  PULUMI_BACKEND_URL        default file://<repo>/.pulumi-state (kept out of git)
  PULUMI_CONFIG_PASSPHRASE  encrypts the stack's secrets; asked for if unset
                            (or PULUMI_CONFIG_PASSPHRASE_FILE)
  SSH_KEY_FILE              if set, stored as the stack's secret sshPrivateKey first
USAGE
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
  -*) echo "scripts/up.sh: the first argument is the stack name, not an option: $1" >&2
      usage >&2; exit 2 ;;
esac
stack=$1
shift
# Relative to where the user stands, not to the repository.
if [ -n "${SSH_KEY_FILE:-}" ] && [ "${SSH_KEY_FILE#/}" = "$SSH_KEY_FILE" ]; then
  SSH_KEY_FILE="$PWD/$SSH_KEY_FILE"
fi
cd "$(dirname "$0")/.."

problems=()
if [ ! -f "stacks/Pulumi.${stack}.yaml" ]; then
  problems+=("No stack file stacks/Pulumi.${stack}.yaml: copy stacks/Pulumi.lab.yaml and edit it.")
fi
if [ -n "${SSH_KEY_FILE:-}" ]; then
  if [ ! -e "$SSH_KEY_FILE" ]; then
    problems+=("SSH_KEY_FILE=${SSH_KEY_FILE}: no such file. Point it at your private key (e.g. ~/.ssh/id_ed25519) or unset it.")
  elif [ ! -f "$SSH_KEY_FILE" ]; then
    problems+=("SSH_KEY_FILE=${SSH_KEY_FILE}: not a file. Point it at your private key file.")
  elif [ ! -r "$SSH_KEY_FILE" ]; then
    problems+=("SSH_KEY_FILE=${SSH_KEY_FILE}: not readable by $(id -un). Fix its owner or mode (chmod 600).")
  fi
fi
if ! command -v pulumi >/dev/null 2>&1; then
  problems+=("The Pulumi CLI is not installed: see https://www.pulumi.com/docs/install/")
fi
if [ "${#problems[@]}" -gt 0 ]; then
  printf 'scripts/up.sh: %s\n' "${problems[@]}" >&2
  echo "scripts/up.sh: nothing was done." >&2
  exit 1
fi

# The same virtualenv the other commands use (made once, remade when requirements.txt changes).
python3 components/project_venv.py up.sh

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.pulumi-state}"
if [ "$PULUMI_BACKEND_URL" = "file://$PWD/.pulumi-state" ]; then
  mkdir -p .pulumi-state
fi
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
