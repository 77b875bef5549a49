#!/usr/bin/env bash
# Make, remove or show the lab's VMs on this workstation, with Vagrant on libvirt or
# VirtualBox (scripts/vms/Vagrantfile). docs/vms.md has the details.
#
#   scripts/vms.sh up      [--single] [--provider libvirt|virtualbox]
#   scripts/vms.sh status  [--single]
#   scripts/vms.sh destroy [--single]
#
# Three VMs (stacks/Pulumi.vms.yaml), or one with --single (stacks/Pulumi.vm1.yaml).
# Then: scripts/up.sh vms (or vm1). Before `up` changes anything it checks, all at
# once, that Vagrant and the provider are installed, that the public key exists and
# that this machine has the free memory the VMs take.
#
# Environment:
#   SSH_KEY_FILE               your private key (default ~/.ssh/id_ed25519); its .pub
#                              goes into the VMs' authorized_keys
#   VAGRANT_DEFAULT_PROVIDER   the provider when --provider is not given (else
#                              virtualbox if VBoxManage is installed, else libvirt)
#   KSERVE_VMS_MEMINFO         where to read free memory (default /proc/meminfo)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
vms_dir="$here/vms"
providers="libvirt virtualbox"
# Memory this machine keeps for itself beyond what the VMs take.
host_reserve_mb=1024

usage() {
  sed -n '/^#   scripts/s/^# *//p' "$0"
  echo "Options: --single (one VM), --provider libvirt|virtualbox (up only). See docs/vms.md."
}

command=""
stack=vms
provider="${VAGRANT_DEFAULT_PROVIDER:-}"
while [ "$#" -gt 0 ]; do
  case "$1" in
    up | destroy | status) command=$1 ;;
    --single) stack=vm1 ;;
    --provider) [ "$#" -ge 2 ] || { usage >&2; exit 2; }; provider=$2; shift ;;
    --provider=*) provider=${1#--provider=} ;;
    -h | --help) usage; exit 0 ;;
    *) echo "scripts/vms.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ -n "$command" ] || { usage >&2; exit 2; }

stack_file="$root/stacks/Pulumi.$stack.yaml"
problems=()

# Free memory in MB: MemAvailable on Linux; on macOS, total memory less 2 GB (its
# free figure counts the file cache as used).
free_memory_mb() {
  local meminfo=${KSERVE_VMS_MEMINFO:-/proc/meminfo}
  if [ -r "$meminfo" ]; then
    awk '/^MemAvailable:/ { print int($2 / 1024); found = 1 } END { if (!found) print "" }' "$meminfo"
  elif command -v sysctl >/dev/null 2>&1 && sysctl -n hw.memsize >/dev/null 2>&1; then
    echo $(($(sysctl -n hw.memsize) / 1048576 - 2048))
  fi
}

# CPUs and memory for a role, from scripts/vms/sizes.txt: "CPUS MEMORY_MB".
size_of() {
  awk -v role="$1" '$1 == role { print $2, $3 }' "$vms_dir/sizes.txt"
}

# The memory the stack's VMs take: each node's size by its role, as the Vagrantfile
# reads them (a control plane without workers gets the "control-plane-alone" size).
needed_memory_mb() {
  local workers control_planes cp_size worker_size
  workers=$(grep -cE '^[[:space:]]*role:[[:space:]]*worker[[:space:]]*$' "$stack_file" || true)
  control_planes=$(grep -cE '^[[:space:]]*role:[[:space:]]*control-plane[[:space:]]*$' "$stack_file" || true)
  if [ "$workers" -eq 0 ]; then
    cp_size=$(size_of control-plane-alone)
  else
    cp_size=$(size_of control-plane)
  fi
  worker_size=$(size_of worker)
  echo $((control_planes * ${cp_size#* } + workers * ${worker_size#* }))
}

# --- checks: every problem is listed before anything is done --------------------
[ -f "$stack_file" ] || problems+=("no stack file ${stack_file#"$root"/}: restore it from git (git checkout -- ${stack_file#"$root"/}).")

have_vagrant=yes
if ! command -v vagrant >/dev/null 2>&1; then
  have_vagrant=no
  problems+=("Vagrant is not installed (no 'vagrant' on the PATH): install it from https://developer.hashicorp.com/vagrant/install or your package manager (Debian/Ubuntu: apt-get install vagrant).")
fi

if [ "$command" = up ]; then
  if [ -z "$provider" ]; then
    if command -v VBoxManage >/dev/null 2>&1; then provider=virtualbox; else provider=libvirt; fi
  fi
  case " $providers " in
    *" $provider "*)
      if [ "$provider" = virtualbox ] && ! command -v VBoxManage >/dev/null 2>&1; then
        problems+=("the virtualbox provider needs VirtualBox, and there is no 'VBoxManage' on the PATH: install VirtualBox (https://www.virtualbox.org/wiki/Downloads), or use --provider libvirt.")
      fi
      if [ "$provider" = libvirt ] && [ "$have_vagrant" = yes ] \
          && ! vagrant plugin list 2>/dev/null | grep -q '^vagrant-libvirt '; then
        problems+=("the libvirt provider needs the vagrant-libvirt plugin, which Vagrant does not list: install it (Debian/Ubuntu: apt-get install vagrant-libvirt libvirt-daemon-system; else vagrant plugin install vagrant-libvirt), or use --provider virtualbox.")
      fi
      ;;
    *) problems+=("unknown provider '$provider': use --provider libvirt or --provider virtualbox (or set VAGRANT_DEFAULT_PROVIDER to one of them).") ;;
  esac

  key_file=${SSH_KEY_FILE:-$HOME/.ssh/id_ed25519}
  public_key="$key_file.pub"
  if [ ! -r "$public_key" ]; then
    problems+=("no public key $public_key to put on the VMs: make a key pair with ssh-keygen -t ed25519 -f $key_file, or point SSH_KEY_FILE at the private key whose .pub you want.")
  elif ! grep -qE '^(ssh-|ecdsa-|sk-)' "$public_key"; then
    problems+=("$public_key does not look like an SSH public key (it should start with ssh-ed25519, ssh-rsa or ecdsa-...): point SSH_KEY_FILE at your private key; its .pub is used.")
  fi

  if [ -f "$stack_file" ]; then
    needed=$(needed_memory_mb)
    free=$(free_memory_mb)
    if [ -z "$free" ]; then
      echo "scripts/vms.sh: warning: could not read this machine's free memory; the VMs take $needed MB." >&2
    elif [ "$free" -lt $((needed + host_reserve_mb)) ]; then
      if [ "$stack" = vms ]; then
        smaller="or make one VM instead: scripts/vms.sh up --single."
      else
        smaller="there is no smaller size."
      fi
      problems+=("too little free memory: the VMs of ${stack_file#"$root"/} take $needed MB, and this machine keeps $host_reserve_mb MB for itself, but only $free MB is free. Close other programs or VMs, $smaller")
    fi
  fi
fi

if [ "${#problems[@]}" -gt 0 ]; then
  echo "scripts/vms.sh $command: nothing was done:" >&2
  for problem in "${problems[@]}"; do
    echo "  - $problem" >&2
  done
  exit 1
fi

# --- run Vagrant ----------------------------------------------------------------
export VAGRANT_CWD="$vms_dir"
# Each stack's machines keep their own Vagrant state (scripts/vms/.vagrant-STACK/).
export VAGRANT_DOTFILE_PATH="$vms_dir/.vagrant-$stack"
export KSERVE_VMS_STACK="$stack"

case "$command" in
  up)
    export KSERVE_VMS_PUBLIC_KEY="$public_key"
    echo "scripts/vms.sh: making the $stack VMs with $provider ($needed MB of memory in all)"
    vagrant up --provider "$provider"
    echo "Next: SSH_KEY_FILE=$key_file scripts/preflight.py --stack $stack --trust"
    echo "then: SSH_KEY_FILE=$key_file scripts/up.sh $stack"
    ;;
  status) vagrant status ;;
  destroy) vagrant destroy --force ;;
esac
