"""Emulated Ubuntu 22.04 nodes: one real sshd per node, in its own mount and UTS namespace.

Each node (see DESIGN.md, "Testing without a cloud", point 3):
- listens on its own loopback address (127.0.10.21, .22, ...) with its own host key;
- has its own hostname, /etc/os-release (Ubuntu 22.04), /etc/machine-id and
  /sys/class/dmi/id/product_uuid;
- sees /etc, /var, /opt, /usr/local, /usr/bin and /usr/sbin through overlays whose
  upper layers live in the lab's temporary directory, so whatever it writes stays
  private to it (the host and the other nodes never see it); /home, /root and /run
  are private too;
- has a login user (LAB_USER) that exists only inside the nodes, with passwordless
  sudo and the lab's ed25519 key authorised;
- finds the stand-ins (tests/lab/standins) in /usr/bin and /usr/sbin: the base tools
  are a lower overlay layer, and the tools of a package (kubeadm, containerd, ...)
  appear when the apt-get stand-in installs it;
- shares /var/lib/lab-cluster with the other nodes: the lab's "API server".

The host's files are never modified. Everything is removed by Lab.close(), also
after a failed test: the processes of each node's namespace are killed, which
drops its mounts, and the temporary directory is deleted.
"""
from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lab import etcd
from lab.cpu_group import CpuGroup

LAB_USER = "labops"  # not a user of the host: it is created inside each node only
# Two labs on one machine (two checkouts tested at once) need their own addresses.
ADDRESS_PREFIX = os.environ.get("KSERVE_LAB_ADDRESS_PREFIX", "127.0.10.")
FIRST_HOST_NUMBER = 21
SSH_PORT = 22
STANDINS = Path(__file__).resolve().parent / "standins"
CLUSTER_DIR_IN_NODE = "/var/lib/lab-cluster"
NODE_STATE = "var/lib/lab"

UBUNTU_OS_RELEASE = """\
PRETTY_NAME="Ubuntu 22.04.5 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.5 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
"""
# What a fresh Ubuntu 22.04 server image has: a swap file, and curl and gpg installed.
UBUNTU_FSTAB = """\
# /etc/fstab: static file system information.
/dev/disk/by-uuid/0b3e2f7a-5d47-4c6e-9a56-3c1f7f3c2d11 / ext4 defaults 0 1
/swap.img\tnone\tswap\tsw\t0\t0
"""
PREINSTALLED = {"ca-certificates": "20240203~22.04.1", "curl": "7.81.0-1ubuntu1.20",
                "gpg": "2.2.27-3ubuntu2.1"}
BASE_TOOLS = {"usr-bin": ["apt-get", "apt-mark", "apt-cache", "dpkg-query", "systemctl", "curl", "gpg",
                           "lspci", "mokutil", "ss"],
              "usr-sbin": ["modprobe", "sysctl", "swapoff", "swapon", "iptables"]}
# A VM's PCI functions as `lspci` lists them (slot, class, vendor:device, revision,
# class name, device name): no NVIDIA device until Node.plant_gpus adds some.
VM_PCI = [("00:00.0", "0600", "8086:1237", "02", "Host bridge", "Intel Corporation 440FX - 82441FX PMC"),
          ("00:01.0", "0601", "8086:7000", "", "ISA bridge", "Intel Corporation 82371SB PIIX3 ISA"),
          ("00:02.0", "0300", "1234:1111", "02", "VGA compatible controller", "Device 1234:1111"),
          ("00:03.0", "0200", "1af4:1000", "", "Ethernet controller", "Red Hat, Inc. Virtio network device")]
# Real tools the stand-ins check configs with, where the host has them (.ci/run installs them).
REAL_CONFIG_CHECKERS = ("haproxy", "keepalived")
REQUIRED_TOOLS = ("/usr/sbin/sshd", "unshare", "nsenter", "sudo", "flock", "fuser", "useradd")

# The node's start-up, run by `unshare --uts --mount --propagation private`. It ends
# by exec'ing sshd, so the process the harness started is the node's sshd.
NODE_SETUP = r"""
set -euo pipefail
node=$1 name=$2 lab=$3 user=$4 delay=$5
hostname "$name"
overlay() { # overlay TARGET UPPER-NAME [EXTRA-LOWER]
  local lower=$1
  [ -n "${3:-}" ] && lower="$3:$1"
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$node/upper/$2,workdir=$node/work/$2" "$1"
}
overlay /etc etc
overlay /var var
overlay /opt opt
overlay /usr/local usr_local
overlay /usr/bin usr_bin "$lab/layers/usr-bin"
overlay /usr/sbin usr_sbin "$lab/layers/usr-sbin"
mount -t overlay overlay -o "lowerdir=$node/sys-class:/sys/class" /sys/class
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/lock
mount --bind "$node/home" /home
mount --bind "$node/root-home" /root
mkdir -p /var/lib/lab-cluster
mount --bind "$lab/cluster" /var/lib/lab-cluster
useradd --create-home --shell /bin/bash --password '*' "$user"
install -d -m 0700 -o "$user" -g "$user" "/home/$user/.ssh"
install -m 0600 -o "$user" -g "$user" "$lab/user_key.pub" "/home/$user/.ssh/authorized_keys"
if [ "$delay" != 0 ]; then sleep "$delay"; fi
exec /usr/sbin/sshd -D -e -f "$node/sshd_config"
"""


def served_urls() -> list[tuple[str, str]]:
    """What the lab's network serves (the curl and apt-get stand-ins read it): the
    pinned apt repositories' signing keys, their index pages, the registry probe."""
    from components import versions
    # pkgs.k8s.io: one repository per minor, each with its own key (every train's).
    kubernetes = [versions.kubernetes_apt_repo(minor) for minor in versions.TRAINS]
    return [*((f"{repo}Release.key", "key") for repo in kubernetes),
            (f"{versions.DOCKER_APT_REPO}/gpg", "key"),
            *((repo, "page") for repo in kubernetes),
            (f"{versions.DOCKER_APT_REPO}/", "page"),
            (versions.IMAGE_REGISTRY_PROBE_URL, "page"),
            (versions.NVIDIA_CONTAINER_TOOLKIT_GPGKEY_URL, "key"),
            (versions.NVIDIA_CONTAINER_TOOLKIT_APT_REPO, "page")]


def standin_python() -> Optional[str]:
    """A Python 3.11+ with PyYAML and cryptography (the kubeadm stand-in's CA) that
    the nodes can run: neither its path nor the file it links to under /root or
    /home, which are private in each node (a CI checkout, and a venv in it, live
    under /home)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if not os.path.exists(candidate) or not visible_in_nodes(candidate):
            continue
        check = subprocess.run([candidate, "-c", "import sys, yaml, tomllib, cryptography"],
                               capture_output=True)
        if check.returncode == 0:
            return candidate
    return None


def visible_in_nodes(path: str) -> bool:
    """Whether a node sees this file where the host does: not under /root or /home,
    which are private in each node, neither the path nor the file it links to."""
    return not any(p.startswith(("/root/", "/home/"))
                   for p in (os.path.abspath(path), os.path.realpath(path)))


def unavailable_reason() -> Optional[str]:
    """Why the lab cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "the SSH lab needs root (mount namespaces, overlays, an sshd per node)"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"the SSH lab needs {', '.join(missing)} (.ci/run installs openssh-server, "
                "sudo and psmisc with apt-get)")
    if standin_python() is None:
        return ("the SSH lab's stand-ins need a Python 3.11+ with PyYAML and cryptography outside "
                "/root and /home (.ci/run installs python3-yaml and python3-cryptography)")
    if etcd.unavailable_reason():
        return etcd.unavailable_reason()
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the SSH lab needs overlayfs (modprobe overlay)"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"the SSH lab needs mount namespaces: unshare failed: {probe.stderr.strip()}"
    return _port_taken_reason(f"{ADDRESS_PREFIX}{FIRST_HOST_NUMBER}")


def _port_taken_reason(address: str, port: int = SSH_PORT) -> Optional[str]:
    """Each node's sshd listens on port 22 of its own loopback address: an SSH server
    listening on every address (0.0.0.0:22, as installing openssh-server starts one
    on Ubuntu 24.04) takes that port from them."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as error:
            return (f"port {port} of {address}, where the first node's sshd listens, is taken "
                    f"({error.strerror}): stop the SSH server that listens on every address "
                    "(sudo systemctl stop ssh.socket ssh.service) or a lab left running, or choose "
                    "other addresses with KSERVE_LAB_ADDRESS_PREFIX")
    return None


@dataclass(frozen=True)
class KeyPair:
    private_openssh: str  # what the stack's secret sshPrivateKey holds
    public_line: str      # "ssh-ed25519 AAAA..."

    @staticmethod
    def generate() -> "KeyPair":
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
        return KeyPair(private, public)

    def body_lines(self) -> list[str]:
        """The base64 lines of the private key: what must never show up in a log."""
        return [line for line in self.private_openssh.splitlines()
                if line and not line.startswith("-----")]


@dataclass(frozen=True)
class Call:
    time: float
    tool: str
    args: list[str]

    @property
    def line(self) -> str:
        return " ".join([self.tool] + self.args)


class Node:
    def __init__(self, lab: "Lab", name: str, address: str, role: str):
        self.lab = lab
        self.name = name
        self.address = address
        self.port = SSH_PORT
        self.role = role
        self.dir = lab.dir / "nodes" / name
        self.host_key = KeyPair.generate()
        self.product_uuid = str(uuid.uuid4())
        self.machine_id = uuid.uuid4().hex
        self.mac = "02:00:" + ":".join(f"{int(part):02x}" for part in address.split("."))
        self.process: Optional[subprocess.Popen] = None
        self.namespace = ""
        self._namespace_fd: Optional[int] = None
        self._helpers: list[subprocess.Popen] = []

    # --- life cycle ----------------------------------------------------------------

    def _prepare_files(self) -> None:
        for layer in ("etc", "var", "opt", "usr_local", "usr_bin", "usr_sbin"):
            (self.dir / "upper" / layer).mkdir(parents=True)
            (self.dir / "work" / layer).mkdir(parents=True)
        for private in ("home", "root-home"):
            (self.dir / private).mkdir(mode=0o755)
        (self.dir / "root-home").chmod(0o700)
        dmi = self.dir / "sys-class" / "dmi" / "id"
        dmi.mkdir(parents=True)
        (dmi / "product_uuid").write_text(self.product_uuid + "\n")
        # Its own network interface: the host's /sys/class/net is hidden (an opaque
        # directory in this layer), so every node has its own MAC.
        net = self.dir / "sys-class" / "net"
        (net / "eth0").mkdir(parents=True)
        (net / "eth0" / "address").write_text(self.mac + "\n")
        os.setxattr(net, "trusted.overlay.opaque", b"y")
        etc = self.dir / "upper" / "etc"
        (etc / "os-release").write_text(UBUNTU_OS_RELEASE)
        (etc / "hostname").write_text(self.name + "\n")
        (etc / "machine-id").write_text(self.machine_id + "\n")
        (etc / "fstab").write_text(UBUNTU_FSTAB)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {self.name}\n")
        (etc / "sudoers.d").mkdir()
        sudoers = etc / "sudoers.d" / LAB_USER
        sudoers.write_text(f"{LAB_USER} ALL=(ALL:ALL) NOPASSWD:ALL\n")
        sudoers.chmod(0o440)
        state = self.dir / "upper" / NODE_STATE
        (state / "dpkg").mkdir(parents=True)
        (state / "dpkg" / "installed").write_text(
            "".join(f"{name} {version}\n" for name, version in sorted(PREINSTALLED.items())))
        (state / "swaps").write_text("/swap.img\n")
        (state / "pci").write_text("".join("\t".join(row) + "\n" for row in VM_PCI))
        key_file = self.dir / "ssh_host_ed25519_key"
        key_file.write_text(self.host_key.private_openssh)
        key_file.chmod(0o600)
        (self.dir / "sshd_config").write_text(f"""\
ListenAddress {self.address}:{self.port}
HostKey {key_file}
PidFile none
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin no
AllowUsers {LAB_USER}
AcceptEnv none
UseDNS no
PrintMotd no
MaxStartups 200
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
""")

    def start(self, sshd_delay: float = 0.0) -> None:
        self._prepare_files()
        log = open(self.dir / "sshd.log", "wb")
        self.process = subprocess.Popen(
            ["unshare", "--uts", "--mount", "--propagation", "private",
             "bash", "-c", NODE_SETUP, "node-setup", str(self.dir), self.name, str(self.lab.dir),
             LAB_USER, f"{sshd_delay:g}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self.lab.cpu_group.join if self.lab.cpu_group else None)
        log.close()

    def wait_namespace(self, timeout: float = 20.0) -> None:
        """Wait until the node's mounts are in place (the setup reached useradd and beyond)."""
        deadline = time.monotonic() + timeout
        marker = f"home/{LAB_USER}/.ssh/authorized_keys"
        while not (self.dir / marker).exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {self.name} did not set up within {timeout}s: {self.log()}")
            time.sleep(0.02)
        self._hold_namespace()

    def _hold_namespace(self) -> None:
        """Note the node's mount namespace, and keep it open: a freed namespace's number
        is given to the next one made, perhaps another test process's node, whose
        processes stop() would then kill as this node's."""
        path = f"/proc/{self.process.pid}/ns/mnt"
        self.namespace = os.readlink(path)
        if self.namespace != os.readlink("/proc/self/ns/mnt") and self._namespace_fd is None:
            self._namespace_fd = os.open(path, os.O_RDONLY)

    def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                socket.create_connection((self.address, self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd of {self.name} did not listen within {timeout}s: {self.log()}")
                time.sleep(0.02)

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"node {self.name} exited ({self.process.returncode}): {self.log()}")

    def log(self) -> str:
        path = self.dir / "sshd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Kill every process of the node's namespace (its sshd, sessions, lock holders)."""
        if self.process is None:
            return
        if not self.namespace:
            with _suppress():
                self._hold_namespace()
        for _ in range(50):
            members = self._namespace_members()
            if not members:
                break
            for pid in members:
                with _suppress():
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        with _suppress():
            self.process.kill()
        self.process.wait(timeout=10)
        for helper in self._helpers:
            with _suppress():
                helper.kill()
            helper.wait(timeout=10)
        self.process = None
        self.namespace = ""
        if self._namespace_fd is not None:
            os.close(self._namespace_fd)
            self._namespace_fd = None

    def _namespace_members(self) -> list[int]:
        if not self.namespace or self.namespace == os.readlink("/proc/self/ns/mnt"):
            return [self.process.pid] if self.process.poll() is None else []
        members = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with _suppress():
                    if os.readlink(f"/proc/{entry}/ns/mnt") == self.namespace:
                        members.append(int(entry))
        return members

    # --- looking inside ------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.process.pid

    def path(self, path: str) -> Path:
        """`path` as the node sees it (through /proc/PID/root, so its mounts apply)."""
        return Path(f"/proc/{self.pid}/root") / path.lstrip("/")

    def read(self, path: str) -> str:
        return self.path(path).read_text()

    def exists(self, path: str) -> bool:
        return self.path(path).exists()

    def run(self, command: str, input: Optional[str] = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a shell command as root inside the node (not through SSH)."""
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-u", "--", "bash", "-c", command],
                              input=input, capture_output=True, text=True, check=check, timeout=timeout)

    def calls(self, tool: Optional[str] = None) -> list[Call]:
        log = self.path("/var/log/lab/calls.log")
        if not log.exists():
            return []
        calls = []
        for line in log.read_text().splitlines():
            fields = line.split("\t")
            args = shlex.split(fields[2]) if len(fields) > 2 else []
            if tool is None or fields[1] == tool:
                calls.append(Call(float(fields[0]), fields[1], args))
        return calls

    def planted_delays(self) -> list[tuple[float, str, float, str]]:
        """(time, step, seconds, the call's arguments) of every planted delay a
        stand-in served on this node."""
        log = self.path("/var/log/lab/delays.log")
        if not log.exists():
            return []
        rows = (line.split("\t") for line in log.read_text().splitlines() if line.strip())
        return [(float(row[0]), row[1], float(row[2]), row[3] if len(row) > 3 else "") for row in rows]

    def calls_matching(self, tool: str, *words: str) -> list[Call]:
        return [c for c in self.calls(tool) if all(w in c.args for w in words)]

    def fault(self, step: str, *, fail: Optional[object] = None, message: str = "",
              status: int = 1, delay: Optional[float] = None) -> None:
        """Plant a fault for a stand-in step: `fail` is a count or "always"; `delay` seconds."""
        faults = self.path(f"/{NODE_STATE}/faults")
        faults.mkdir(parents=True, exist_ok=True)
        if delay is not None:
            (faults / f"{step}.delay").write_text(f"{delay:.3f}\n")
        if fail is not None:
            (faults / f"{step}.fail").write_text(f"{fail}\n")
            (faults / f"{step}.status").write_text(f"{status}\n")
            if message:
                (faults / f"{step}.message").write_text(message + "\n")

    def plant_gpus(self, count: int, device: str = "20b5", name: str = "NVIDIA Corporation GA100 [A100 PCIe 80GB]",
                   pci_class: str = "0302") -> None:
        """NVIDIA GPUs passed through to this node (each with its audio function, which
        is not a GPU), as `lspci -n` will list them."""
        rows = []
        for index in range(count):
            slot = f"{index + 1:02x}:00"
            rows.append(f"{slot}.0\t{pci_class}\t10de:{device}\ta1\t3D controller\t{name}\n")
            rows.append(f"{slot}.1\t0403\t10de:1aef\ta1\tAudio device\tNVIDIA Corporation Device 1aef\n")
        with open(self.path(f"/{NODE_STATE}/pci"), "a") as table:
            table.write("".join(rows))

    def set_secure_boot(self, state: str) -> None:
        """"enabled", "disabled" or "bios" (no EFI variables), as mokutil reports it."""
        self.path(f"/{NODE_STATE}/secureboot").write_text(state + "\n")

    def nvidia_module(self) -> Optional[str]:
        """The version of the nvidia module loaded, or None."""
        path = self.path(f"/{NODE_STATE}/nvidia/module")
        return path.read_text().strip() or None if path.exists() else None

    def reboot(self) -> None:
        """What a reboot changes that the lab models: the nvidia module loaded at boot
        is the installed driver's, if the firmware lets it load (Secure Boot without
        the enrolled key does not)."""
        module = self.path(f"/{NODE_STATE}/nvidia/module")
        module.unlink(missing_ok=True)
        driver = next((v for n, v in self.packages().items() if n.startswith("nvidia-driver-")), "")
        secure = self.path(f"/{NODE_STATE}/secureboot")
        blocked = secure.exists() and secure.read_text().strip() == "enabled" \
            and not self.exists(f"/{NODE_STATE}/mok-enrolled")
        if driver and not blocked:
            module.parent.mkdir(parents=True, exist_ok=True)
            module.write_text(driver.split("-")[0] + "\n")

    def clear_faults(self) -> None:
        shutil.rmtree(self.path(f"/{NODE_STATE}/faults"), ignore_errors=True)

    def hold_dpkg_lock(self, seconds: float) -> subprocess.Popen:
        """Hold /var/lib/dpkg/lock-frontend the way unattended-upgrades does after boot."""
        holder = subprocess.Popen(
            ["nsenter", "-t", str(self.pid), "-m", "-u", "--",
             "flock", "/var/lib/dpkg/lock-frontend", "bash", "-c",
             # The moment of release is written while the lock is still held, so
             # anything that ran under the lock ran before this time.
             f"sleep {seconds:g}; date +%s.%N > /{NODE_STATE}/dpkg-lock-released"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._helpers.append(holder)
        deadline = time.monotonic() + 10
        while self.run("fuser /var/lib/dpkg/lock-frontend", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not take the dpkg lock on {self.name}")
            time.sleep(0.02)
        return holder

    def dpkg_lock_released_at(self) -> float:
        return float(self.read(f"/{NODE_STATE}/dpkg-lock-released"))

    def _table(self, name: str) -> dict[str, str]:
        path = self.path(f"/{NODE_STATE}/{name}")
        if not path.exists():
            return {}
        rows = (line.split() for line in path.read_text().splitlines() if line.strip())
        return {row[0]: row[1] if len(row) > 1 else "" for row in rows}

    def packages(self) -> dict[str, str]:
        return self._table("dpkg/installed")

    def held(self) -> set[str]:
        return set(self._table("dpkg/held"))

    def services(self, kind: str) -> set[str]:
        """Units that are 'enabled' or 'active'."""
        path = self.path(f"/{NODE_STATE}/systemd/{kind}")
        return {p.name for p in path.iterdir()} if path.exists() else set()

    def restarts(self, unit: str) -> int:
        path = self.path(f"/{NODE_STATE}/systemd/{unit}.starts")
        return len(path.read_text().split()) if path.exists() else 0

    def modules(self) -> set[str]:
        return set(self._table("modules"))

    def sysctl(self, key: str) -> Optional[str]:
        path = self.path(f"/{NODE_STATE}/sysctl/{key}")
        return path.read_text().strip() if path.exists() else None

    def active_swaps(self) -> list[str]:
        return list(self._table("swaps"))

    def snapshot(self) -> dict[str, tuple]:
        """Everything the node has written (its private layers), for before/after comparisons.

        Logs are left out (sshd records each login in wtmp/lastlog, the stand-ins
        their calls); contents and modes are compared, not times.
        """
        found: dict[str, tuple] = {}
        roots = {"/etc": "upper/etc", "/var": "upper/var", "/opt": "upper/opt",
                 "/usr/local": "upper/usr_local", "/usr/bin": "upper/usr_bin",
                 "/usr/sbin": "upper/usr_sbin", "/home": "home", "/root": "root-home"}
        for shown, stored in roots.items():
            base = self.dir / stored
            for path in sorted(base.rglob("*")):
                relative = f"{shown}/{path.relative_to(base)}"
                # etcd's data and pid change on their own, as a real member's do.
                if relative.startswith(("/var/log/", "/var/lib/lab/faults", "/var/lib/etcd/",
                                        "/var/lib/lab/etcd/")):
                    continue
                info = path.lstat()
                if stat.S_ISREG(info.st_mode):
                    found[relative] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
                elif stat.S_ISLNK(info.st_mode):
                    found[relative] = ("link", os.readlink(path))
                elif stat.S_ISCHR(info.st_mode):
                    found[relative] = ("deleted",)  # an overlay whiteout
                elif stat.S_ISDIR(info.st_mode):
                    found[relative] = ("dir", stat.S_IMODE(info.st_mode))
        return found

    def private_files_containing(self, needle: str) -> list[str]:
        """Paths among the node's own files whose content contains `needle`."""
        return [path for path, entry in self.snapshot().items()
                if entry[0] == "file" and needle.encode() in entry[2]]


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        return kind is not None and issubclass(kind, (OSError, subprocess.SubprocessError))


class Lab:
    """A set of emulated nodes sharing one cluster directory and one login key."""

    def __init__(self, cpu_group: Optional[CpuGroup] = None):
        """`cpu_group`: every node's processes run in it (the benchmark counts their CPU)."""
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self.cpu_group = cpu_group
        self.dir = Path(tempfile.mkdtemp(prefix="kserve-lab-"))
        self.dir.chmod(0o755)
        self.user = LAB_USER
        self.key = KeyPair.generate()
        self.nodes: dict[str, Node] = {}
        self._interfaces: list[str] = []
        self._lock = threading.Lock()
        (self.dir / "user_key.pub").write_text(self.key.public_line + "\n")
        (self.dir / "cluster").mkdir()
        self._install_standins(standin_python())

    def _install_standins(self, python: str) -> None:
        """Copy the stand-ins with their placeholders filled in; lay out the base tools."""
        target = self.dir / "standins"
        shutil.copytree(STANDINS, target, ignore=shutil.ignore_patterns("__pycache__"))
        for path in target.rglob("*"):
            if path.is_file():
                text = path.read_text()
                filled = text.replace("@LAB_STANDINS@", str(target)).replace("@LAB_PYTHON@", python) \
                    .replace("@LAB_ADDRESS_PREFIX@", ADDRESS_PREFIX)
                if filled != text:
                    path.write_text(filled)
        (target / "served.tsv").write_text("".join(f"{url}\t{kind}\n" for url, kind in served_urls()))
        # Compiled once here, with the Python the nodes run, rather than on every call.
        subprocess.run([python, "-m", "compileall", "-q", str(target / "impl.py"),
                        str(target / "etcd_member.py"), str(target / "certs.py")], check=True)
        etcd.install(target)  # the real etcd kubeadm init starts (tests/lab/etcd.py)
        # Debian's haproxy and keepalived, for the stand-ins' config checks (-c, -t):
        # copied, since the stand-ins take their paths inside a node.
        (target / "real-tools").mkdir()
        for tool in REAL_CONFIG_CHECKERS:
            if shutil.which(tool):
                shutil.copy2(shutil.which(tool), target / "real-tools" / tool)
        for layer, tools in BASE_TOOLS.items():
            (self.dir / "layers" / layer).mkdir(parents=True)
            source_dir = "bin" if layer == "usr-bin" else "sbin"
            for tool in tools:
                shutil.copy2(target / source_dir / tool, self.dir / "layers" / layer / tool)

    def address_for(self, index: int) -> str:
        return f"{ADDRESS_PREFIX}{FIRST_HOST_NUMBER + index}"

    def start(self, names: list[str], *, sshd_delay: float = 0.0, wait: bool = True) -> list[Node]:
        """Start nodes in parallel; the first node of an empty lab is the control plane."""
        started = []
        for name in names:
            role = "control-plane" if not self.nodes else "worker"
            node = Node(self, name, self.address_for(len(self.nodes)), role)
            self.nodes[name] = node
            node.start(sshd_delay)
            started.append(node)
        for node in started:
            node.wait_namespace()
        if wait and not sshd_delay:
            for node in started:
                node.wait_listening()
        return started

    def node_at(self, address: str) -> Optional[Node]:
        return next((n for n in self.nodes.values() if n.address == address), None)

    def stack_config(self, names: Optional[list[str]] = None, *, pin_host_keys: bool = True,
                     host_keys: Optional[dict[str, str]] = None) -> dict:
        """Stack config (keys without the project prefix) for these nodes of the lab."""
        chosen = [self.nodes[n] for n in (names or list(self.nodes))]
        entries = []
        for node in chosen:
            entry = {"name": node.name, "address": node.address, "role": node.role}
            key = (host_keys or {}).get(node.name) or (node.host_key.public_line if pin_host_keys else None)
            if key:
                entry["hostKey"] = key
            entries.append(entry)
        return {"nodes": entries, "ssh": {"user": self.user}}

    def cluster(self) -> dict:
        path = self.dir / "cluster" / "cluster.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def mark_cni_ready(self, pools: list[str]) -> None:
        """Calico's release is installed with these IP pools: kubelets report Ready from
        now on if the pools lie in the pod subnet kubeadm init recorded (the kubectl
        stand-in checks), as the tigera operator refuses other pools."""
        (self.dir / "cluster" / "cni-ready").write_text("calico\n" + "".join(f"{p}\n" for p in pools))

    # --- what the (mocked) Kubernetes API learns from the program -------------------

    def _change_cluster(self, change) -> None:
        """Apply `change(state)` to cluster.json under the lock the stand-ins take."""
        directory = self.dir / "cluster"
        with open(directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = directory / "cluster.json"
            state = json.loads(path.read_text()) if path.exists() else {}
            change(state)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(tmp, path)

    def add_storage_class(self, name: str, default: bool = False) -> None:
        def change(state):
            classes = state.setdefault("storage_classes", {})
            classes[name] = {"default": default or classes.get(name, {}).get("default", False)}
        self._change_cluster(change)

    def add_claim(self, namespace: str, name: str, spec: dict) -> None:
        """A PersistentVolumeClaim was created: pods may mount it (the kubectl stand-in
        binds it to a directory on the node of the first pod, as local-path does)."""
        def change(state):
            state.setdefault("claims", {})[f"{namespace}/{name}"] = {
                "uid": str(uuid.uuid4()), "storageClassName": spec.get("storageClassName"),
                "accessModes": spec.get("accessModes") or []}
        self._change_cluster(change)

    def remove_claim(self, namespace: str, name: str) -> None:
        """The claim was deleted: with reclaim Delete its volume directory goes too."""
        removed = {}

        def change(state):
            removed.update(state.get("claims", {}).pop(f"{namespace}/{name}", None) or {})
        self._change_cluster(change)
        node = self.nodes.get(removed.get("node", ""))
        if node is not None and removed.get("path"):
            shutil.rmtree(node.path(removed["path"]), ignore_errors=True)

    def claim(self, namespace: str, name: str) -> dict:
        return self.cluster().get("claims", {}).get(f"{namespace}/{name}", {})

    def claim_files(self, namespace: str, name: str) -> dict[str, bytes]:
        """Every file in the claim's volume directory, by its path inside the claim."""
        record = self.claim(namespace, name)
        node = self.nodes.get(record.get("node", ""))
        if node is None or not record.get("path"):
            return {}
        base = node.path(record["path"])
        return {p.relative_to(base).as_posix(): p.read_bytes()
                for p in sorted(base.rglob("*")) if p.is_file()}

    def vrrp_interface(self) -> str:
        """An empty bridge (no port, no address) in the network the nodes share, for
        keepalived's config test: it refuses lo, the only interface the nodes'
        loopback addresses are on. One per address prefix; removed by close()."""
        name = "kslab" + ADDRESS_PREFIX.strip(".").rsplit(".", 1)[-1]
        subprocess.run(["ip", "link", "del", name], capture_output=True)  # a crashed lab's
        subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True, capture_output=True)
        self._interfaces.append(name)
        return name

    def close(self) -> None:
        errors = []
        for node in self.nodes.values():
            try:
                node.stop()
            except Exception as error:  # keep tearing the others down
                errors.append(f"{node.name}: {error}")
        for name in self._interfaces:
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise RuntimeError("lab teardown: " + "; ".join(errors))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
