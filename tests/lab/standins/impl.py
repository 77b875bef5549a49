"""The logic of the apt-get, apt-mark, kubeadm and kubectl stand-ins.

Runs on an emulated node (as root, through sudo) after the bash wrapper has
recorded the call and applied any planted fault. Node state lives under
/var/lib/lab (the node's private /var); the cluster, i.e. what the API server
would know, lives in /var/lib/lab-cluster, a directory every node of the lab
shares. Messages copy the shape of the real tools' messages so that the node
scripts' error handling sees what it would see on a real machine.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

# base64, fnmatch, hashlib, secrets, shutil, socket and yaml are imported by the
# functions that use them: every stand-in call starts a new Python, and importing
# them all cost more CPU than most calls' own work.

STATE = Path(os.environ.get("LAB_STATE", "/var/lib/lab"))
CLUSTER = Path("/var/lib/lab-cluster")
PAYLOAD = Path(os.environ["LAB_STANDINS"]) / "payload"
DPKG_LOCK = Path("/var/lib/dpkg/lock-frontend")
LISTS_LOCK = Path("/var/lib/apt/lists/lock")


def fail(message: str, status: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(status)


# --- Debian versions ---------------------------------------------------------------

def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's comparison of an upstream version or a revision."""
    while a or b:
        a_text = re.match(r"\D*", a).group()
        b_text = re.match(r"\D*", b).group()
        for i in range(max(len(a_text), len(b_text))):
            ca = _order(a_text[i]) if i < len(a_text) else 0
            cb = _order(b_text[i]) if i < len(b_text) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a, b = a[len(a_text):], b[len(b_text):]
        a_num = re.match(r"\d*", a).group()
        b_num = re.match(r"\d*", b).group()
        if int(a_num or 0) != int(b_num or 0):
            return -1 if int(a_num or 0) < int(b_num or 0) else 1
        a, b = a[len(a_num):], b[len(b_num):]
    return 0


def compare_versions(a: str, b: str) -> int:
    def split(version):
        epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
        return int(epoch or 0), upstream, revision
    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def newest(versions: list[str]) -> str:
    best = versions[0]
    for version in versions[1:]:
        if compare_versions(version, best) > 0:
            best = version
    return best


# --- apt ------------------------------------------------------------------------------

UBUNTU_JAMMY = {
    "apt-transport-https": ["2.4.13"],
    "ca-certificates": ["20240203~22.04.1"],
    "curl": ["7.81.0-1ubuntu1.20"],
    "gpg": ["2.2.27-3ubuntu2.1"],
    "conntrack": ["1:1.4.6-2build2"],
    "nfs-common": ["1:2.6.1-1ubuntu1.2"],
    "socat": ["1.7.4.1-3ubuntu4"],
    # jammy-updates' haproxy 2.4 and jammy's keepalived (the pinned ones).
    "haproxy": ["2.4.22-0ubuntu0.22.04.3", "2.4.24-0ubuntu0.22.04.2"],
    "keepalived": ["1:2.2.4-0.2build1"],
}
DOCKER_JAMMY = {
    "containerd.io": ["1.7.27-1", "1.7.28-1~ubuntu.22.04~jammy", "1.7.28-2~ubuntu.22.04~jammy",
                      "1.7.29-1~ubuntu.22.04~jammy", "2.1.4-1~ubuntu.22.04~jammy"],
}
# The runc each containerd.io build bundles (Docker's changelogs; the rebuilt
# 1.7.28-2 and 1.7.29-1 carry runc 1.3.3).
RUNC_OF_CONTAINERD_IO = {"1.7.27-1": "1.2.5", "1.7.28-1~ubuntu.22.04~jammy": "1.3.0",
                         "1.7.28-2~ubuntu.22.04~jammy": "1.3.3", "1.7.29-1~ubuntu.22.04~jammy": "1.3.3",
                         "2.1.4-1~ubuntu.22.04~jammy": "1.3.0"}
# Ubuntu's NVIDIA server drivers (restricted, jammy-updates): one build per branch,
# as the archive keeps only the newest. The build numbers are the lab's, in the
# archive's shape (<upstream>-0ubuntu0.22.04.N); nvidia-smi reports the upstream part.
NVIDIA_BRANCH_BUILDS = {"535-server": "535.274.02-0ubuntu0.22.04.1",
                        "565-server": "565.57.01-0ubuntu0.22.04.1",
                        "570-server": "570.195.03-0ubuntu0.22.04.1",
                        "580-server": "580.95.05-0ubuntu0.22.04.1",
                        "590-server": "590.44.01-0ubuntu0.22.04.1",
                        "595-server": "595.45.04-0ubuntu0.22.04.1"}
for _branch, _build in NVIDIA_BRANCH_BUILDS.items():
    UBUNTU_JAMMY[f"nvidia-driver-{_branch}"] = [_build]
    UBUNTU_JAMMY[f"nvidia-utils-{_branch}"] = [_build]
# NVIDIA's flat repository (stable/deb/$(ARCH)): the toolkit's four packages, same version each.
NVIDIA_TOOLKIT_VERSIONS = ["1.17.8-1", "1.18.0-1", "1.20.0-1"]
NVIDIA_TOOLKIT = {name: list(NVIDIA_TOOLKIT_VERSIONS) for name in (
    "nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
    "libnvidia-container1")}
NVIDIA_REPO = re.compile(r"^(https://nvidia\.github\.io/libnvidia-container/)stable/deb/(amd64|\$\(ARCH\))/?$")
DEPENDS = {"kubeadm": ["kubelet", "kubectl", "cri-tools", "kubernetes-cni"],
           "kubelet": ["kubernetes-cni"],
           "nvidia-container-toolkit": ["nvidia-container-toolkit-base", "libnvidia-container-tools"],
           "libnvidia-container-tools": ["libnvidia-container1"]}
# Packages whose files (payload/NAME) are shared by every branch: nvidia-utils-* bring nvidia-smi.
PAYLOAD_OF = {"nvidia-utils-": "nvidia-utils"}


def dependencies(name: str) -> list[str]:
    if name.startswith("nvidia-driver-"):  # nvidia-driver-580-server: Depends nvidia-utils-580-server
        return [name.replace("nvidia-driver-", "nvidia-utils-", 1)]
    return DEPENDS.get(name, [])


def running_kernel_headers() -> str:
    """linux-headers-$(uname -r): the archive has the headers of the kernel the node runs
    (an empty package here: /lib/modules is the host's, never written)."""
    return f"linux-headers-{os.uname().release}"
UNITS = {"containerd.io": ["containerd"], "kubelet": ["kubelet"], "haproxy": ["haproxy"],
         "keepalived": ["keepalived"]}
K8S_REPO = re.compile(r"^https://pkgs\.k8s\.io/core:/stable:/v(\d+)\.(\d+)/deb/?$")


def kubernetes_repo(major: str, minor: str) -> dict[str, list[str]]:
    patches = [f"{major}.{minor}.{p}-1.1" for p in range(15)]
    return {"kubeadm": patches, "kubelet": patches, "kubectl": patches,
            "cri-tools": [f"{major}.{minor}.1-1.1"], "kubernetes-cni": ["1.5.1-1.1"]}


def read_table(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = (line.split() for line in path.read_text().splitlines() if line.strip())
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def write_table(path: Path, table: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} {v}\n".replace(" \n", "\n") for k, v in sorted(table.items())))


def sources() -> list[tuple[str, str, str, list[str], dict]]:
    found = []
    for file in sorted(Path("/etc/apt/sources.list.d").glob("*.list")):
        for line in file.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line.startswith("deb "):
                continue
            options = {}
            match = re.match(r"deb\s+\[([^\]]*)\]\s+(.*)", line)
            rest = line[4:].strip()
            if match:
                options = dict(opt.split("=", 1) for opt in match.group(1).split() if "=" in opt)
                rest = match.group(2)
            words = rest.split()
            found.append((file.name, words[0], words[1] if len(words) > 1 else "",
                          words[2:], options))
    return found


def available() -> dict[str, list[str]]:
    catalogue = {name: list(versions) for name, versions in UBUNTU_JAMMY.items()}
    catalogue[running_kernel_headers()] = ["5.15.0.lab"]
    for repo in read_table(STATE / "apt" / "lists"):
        if repo.startswith("k8s:"):
            major, minor = repo[4:].split(".")
            extra = kubernetes_repo(major, minor)
        elif repo == "docker:jammy":
            extra = DOCKER_JAMMY
        elif repo == "nvidia:toolkit":
            extra = NVIDIA_TOOLKIT
        else:
            continue
        for name, versions in extra.items():
            catalogue.setdefault(name, []).extend(versions)
    return catalogue


@contextlib.contextmanager
def lock(path: Path, timeout: float):
    """An exclusive lock, waiting up to `timeout` seconds (apt's DPkg::Lock::Timeout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                fail(f"E: Could not get lock {path}. It is held by another process\n"
                     f"E: Unable to acquire the dpkg frontend lock ({path}), is another process using it?",
                     100)
            if not announced:
                print(f"Waiting for cache lock: Could not get lock {path}. It is held by another process",
                      file=sys.stderr)
                announced = True
            time.sleep(0.2)
    try:
        yield
    finally:
        handle.close()


def served() -> dict[str, str]:
    """What the lab's network serves (written when the lab is made, from
    components/versions.py): URL -> "key" (an apt signing key) or "page"."""
    rows = (line.split("\t") for line in (PAYLOAD.parent / "served.tsv").read_text().splitlines() if line)
    return {url: kind for url, kind in rows}


def signing_key(key_url: str) -> bytes:
    """The key the lab's repository behind `key_url` signs with: the bytes the curl
    stand-in serves there (armoured), i.e. what `gpg --dearmor` makes of them."""
    return f"lab signing key for {key_url}".encode()


def apt_update(lock_timeout: float) -> None:
    import hashlib
    fetched = {}
    urls = served()
    with lock(LISTS_LOCK, 0):
        for number, (file, url, suite, components, options) in enumerate(sources(), start=1):
            url = url.replace("$(ARCH)", "amd64")  # apt's own substitution
            k8s = K8S_REPO.match(url)
            nvidia = NVIDIA_REPO.match(url)
            base = url if url.endswith("/") else url + "/"
            if k8s and suite == "/" and base in urls:
                key_url, repo = f"{base}Release.key", f"k8s:{k8s.group(1)}.{k8s.group(2)}"
            elif nvidia and suite == "/" and f"{nvidia.group(1)}stable/deb/" in urls \
                    and f"{nvidia.group(1)}gpgkey" in urls:
                key_url, repo = f"{nvidia.group(1)}gpgkey", "nvidia:toolkit"
            elif url.rstrip("/") + "/gpg" in urls and suite == "jammy" and "stable" in components:
                key_url, repo = url.rstrip("/") + "/gpg", "docker:jammy"
            else:
                # pkgs.k8s.io keeps one repository per minor: the lab serves the pinned one.
                fail(f"E: The repository '{url} {suite} Release' does not have a Release file.", 100)
            shown = f"{url.rstrip('/')} {suite if suite != '/' else ''} InRelease".replace("  ", " ")
            keyring = options.get("signed-by")
            try:
                key = Path(keyring).read_bytes() if keyring else b""
            except OSError:
                key = b""
            if key != signing_key(key_url):
                # apt (gpgv) with a keyring that lacks the repository's key.
                key_id = hashlib.sha256(signing_key(key_url)).hexdigest()[:16].upper()
                fail(f"W: GPG error: {shown}: The following signatures couldn't be verified because the "
                     f"public key is not available: NO_PUBKEY {key_id}\n"
                     f"E: The repository '{shown}' is not signed.", 100)
            fetched[repo] = file
            print(f"Get:{number} {url} {suite} InRelease")
        write_table(STATE / "apt" / "lists", fetched)
    print("Reading package lists...")


def apt_install(specs: list[str], flags: set[str], lock_timeout: float) -> None:
    import fnmatch
    import shutil
    catalogue = available()
    installed = read_table(STATE / "dpkg" / "installed")
    held = read_table(STATE / "dpkg" / "held")
    wanted: dict[str, str] = {}
    for spec in specs:
        name, _, pattern = spec.partition("=")
        if name not in catalogue:
            fail(f"E: Unable to locate package {name}", 100)
        versions = catalogue[name]
        if pattern:
            matching = [v for v in versions if fnmatch.fnmatchcase(v, pattern)]
            if not matching:
                fail(f"E: Version '{pattern}' for '{name}' was not found", 100)
            wanted[name] = newest(matching)
        else:
            wanted[name] = installed.get(name) or newest(versions)
    for name in list(wanted):
        for dependency in dependencies(name):
            if dependency not in wanted and dependency not in installed:
                if dependency not in catalogue:
                    fail(f"E: Unable to correct problems, you have held broken packages.\n"
                         f" {name} : Depends: {dependency} but it is not installable", 100)
                wanted[dependency] = newest(catalogue[dependency])
    changes = {n: v for n, v in wanted.items() if installed.get(n) != v}
    for name, version in wanted.items():
        if name not in changes:
            print(f"{name} is already the newest version ({version}).")
    if not changes:
        print("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.")
        return
    if "-y" not in flags and "--yes" not in flags and "--assume-yes" not in flags:
        fail("Do you want to continue? [Y/n] Abort.", 1)
    if any(n in held for n in changes if n in installed) and "--allow-change-held-packages" not in flags:
        fail("E: Held packages were changed and -y was used without --allow-change-held-packages.", 100)
    if any(n in installed and compare_versions(v, installed[n]) < 0 for n, v in changes.items()) \
            and "--allow-downgrades" not in flags:
        fail("E: Packages were downgraded and -y was used without --allow-downgrades.", 100)
    with lock(DPKG_LOCK, lock_timeout):
        units = set((STATE / "units").read_text().split()) if (STATE / "units").exists() else set()
        for name, version in sorted(changes.items()):
            shared = next((p for prefix, p in PAYLOAD_OF.items() if name.startswith(prefix)), name)
            payload = PAYLOAD / shared
            if payload.is_dir():
                for source in payload.rglob("*"):
                    if source.is_file():
                        target = Path("/") / source.relative_to(payload)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        # Like dpkg: a new file renamed into place, so that a symlink
                        # there (the host's /usr/bin/kubectl may be one, pointing out
                        # of the node's overlays) is replaced, never written through.
                        fresh = target.with_name(f".{target.name}.dpkg-new")
                        shutil.copy2(source, fresh)
                        os.replace(fresh, target)
            units.update(UNITS.get(name, []))
            installed[name] = version
            print(f"Setting up {name} ({version}) ...")
            if name.startswith("nvidia-driver-"):
                # The DKMS build for the running kernel; loading it is modprobe's (or a boot's).
                print(f"Building for {os.uname().release}\nBuilding initial module for "
                      f"{os.uname().release}\nDone.")
        write_table(STATE / "dpkg" / "installed", installed)
        (STATE / "units").write_text("".join(f"{u}\n" for u in sorted(units)))


# apt-get's options (apt-private/private-cmndline.cc, apt 2.4 as in jammy), the ones the
# lab models: long name -> short letter ("" for none), and whether it takes a value.
APT_GET_OPTIONS = {
    "yes": "y", "assume-yes": "y", "assume-no": "", "quiet": "q", "simulate": "s", "just-print": "s",
    "dry-run": "s", "no-act": "s", "recon": "s", "download-only": "d", "fix-broken": "f",
    "ignore-missing": "m", "fix-missing": "m", "show-upgraded": "u", "verbose-versions": "V",
    "no-install-recommends": "", "install-recommends": "", "install-suggests": "", "no-install-suggests": "",
    "allow-downgrades": "", "allow-remove-essential": "", "allow-change-held-packages": "",
    "allow-unauthenticated": "", "reinstall": "", "only-upgrade": "", "no-upgrade": "", "purge": "",
    "auto-remove": "", "autoremove": "", "print-uris": "", "force-yes": "", "no-download": "",
    "list-cleanup": "", "no-list-cleanup": "", "fix-policy": "", "help": "h", "version": "v",
}
APT_GET_VALUES = {"option": "o", "config-file": "c", "target-release": "t", "default-release": "t",
                  "host-architecture": "a"}


def apt_get(args: list[str]) -> None:
    flags: set[str] = set()
    options: dict[str, str] = {}
    words: list[str] = []
    shorts = {s: f"--{n}" for n, s in APT_GET_OPTIONS.items() if s}
    short_values = {s: n for n, s in APT_GET_VALUES.items()}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            base = name[3:] if name.startswith("no-") and name[3:] in APT_GET_OPTIONS else name
            if name in APT_GET_VALUES:
                if not eq:
                    value, i = (args[i] if i < len(args) else ""), i + 1
                options.setdefault(name, "")
                if name == "option":
                    key, _, setting = value.partition("=")
                    options[f"o:{key.lower()}"] = setting
            elif base in APT_GET_OPTIONS:
                if not name.startswith("no-") or name in APT_GET_OPTIONS:
                    flags.add(f"--{name}")
            else:
                # apt-pkg/contrib/cmndline.cc: an option it does not know.
                fail(f"E: Command line option {arg} is not understood in combination with the other options",
                     100)
            continue
        letters = arg[1:]
        while letters:
            char, letters = letters[0], letters[1:]
            if char in short_values:
                value = letters or (args[i] if i < len(args) else "")
                if not letters:
                    i += 1
                letters = ""
                if char == "o":
                    key, _, setting = value.partition("=")
                    options[f"o:{key.lower()}"] = setting
            elif char in shorts:
                flags.add(f"-{char}")
                flags.add(shorts[char])
            else:
                fail(f"E: Command line option '{char}' [from {arg}] is not understood in combination with "
                     "the other options.", 100)
    options = {k[2:]: v for k, v in options.items() if k.startswith("o:")}
    if os.geteuid() != 0:
        fail("E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)", 100)
    lock_timeout = float(options.get("dpkg::lock::timeout", "0"))
    if not words:
        fail("E: Invalid operation", 100)
    if words[0] == "update":
        apt_update(lock_timeout)
    elif words[0] == "install":
        apt_install(words[1:], flags, lock_timeout)
    else:
        fail(f"E: Invalid operation {words[0]} (not emulated by the lab)", 100)


def apt_mark(args: list[str]) -> None:
    held = read_table(STATE / "dpkg" / "held")
    installed = read_table(STATE / "dpkg" / "installed")
    if not args:
        fail("apt-mark: missing command", 100)
    command, names = args[0], args[1:]
    if command == "showhold":
        print("".join(f"{n}\n" for n in sorted(held)), end="")
        return
    if os.geteuid() != 0:
        fail("E: Could not create temporary file for /var/lib/apt/extended_states - mkstemp (13: Permission denied)", 100)
    for name in names:
        if name not in installed and name not in available():
            fail(f"E: Unable to locate package {name}", 100)
        if command == "hold":
            print(f"{name} was already set on hold." if name in held else f"{name} set on hold.")
            held[name] = ""
        elif command == "unhold":
            print(f"Canceled hold on {name}." if name in held else f"{name} was already not on hold.")
            held.pop(name, None)
        else:
            fail(f"E: Invalid operation {command}", 100)
    write_table(STATE / "dpkg" / "held", held)


# --- the cluster ("API server") -----------------------------------------------------

@contextlib.contextmanager
def cluster_state():
    """The shared cluster record, locked against the other nodes for the whole change."""
    CLUSTER.mkdir(parents=True, exist_ok=True)
    with open(CLUSTER / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        path = CLUSTER / "cluster.json"
        state = json.loads(path.read_text()) if path.exists() else {}
        before = json.dumps(state, sort_keys=True)
        yield state
        if json.dumps(state, sort_keys=True) != before:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(tmp, path)


def installed_version(name: str) -> str:
    return read_table(STATE / "dpkg" / "installed").get(name, "")


def require_installed(tool: str, package: str) -> None:
    if not installed_version(package):
        fail(f"{tool}: command not found", 127)


def service_active(unit: str) -> bool:
    return (STATE / "systemd" / "active" / unit).exists()


def set_service(unit: str, active: bool) -> None:
    path = STATE / "systemd" / "active" / unit
    path.parent.mkdir(parents=True, exist_ok=True)
    if active:
        path.touch()
    elif path.exists():
        path.unlink()


def sysctl_value(key: str) -> str:
    path = STATE / "sysctl" / key
    return path.read_text().strip() if path.exists() else "0"


def parse_duration(text: str) -> float:
    """A Go duration as kubeadm takes it (1h, 15m, 24h0m0s; 0 = never expires)."""
    if text in ("0", "0s"):
        return 0.0
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not match or not text:
        fail(f'invalid argument "{text}" for "--ttl" flag: time: invalid duration "{text}"')
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def new_token() -> str:
    import secrets
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    pick = lambda n: "".join(secrets.choice(alphabet) for _ in range(n))  # noqa: E731
    return f"{pick(6)}.{pick(16)}"


def kubeconfig(server: str, ca_pem: str, user: str, credentials: dict) -> str:
    import base64
    import yaml
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kubernetes", "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}}],
        "contexts": [{"name": f"{user}@kubernetes", "context": {"cluster": "kubernetes", "user": user}}],
        "current-context": f"{user}@kubernetes",
        "users": [{"name": user, "user": credentials}],
    }, sort_keys=False)


def client_certificate(ca_pem: str, ca_key_pem: str, common_name: str, groups: list[str],
                       valid_days: float = 365) -> dict:
    """A kubeconfig user's client-certificate-data and client-key-data: a certificate
    signed by the cluster CA with CN the user and O each group, as the API server
    reads an identity from it. The key is ECDSA P-256 (kubeadm's encryptionAlgorithm
    ECDSA-P256; its default is RSA-2048, slower to make on every lab init)."""
    import base64
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
                        + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return {"client-certificate-data": pem(cert.public_bytes(serialization.Encoding.PEM)),
            "client-key-data": pem(key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))}


def new_ca() -> tuple[str, str]:
    """(certificate PEM, key PEM) of a self-signed cluster CA, as kubeadm init makes
    one (CN kubernetes, ten years): a real one, so that what the lab's kubeadm
    signs with it can be verified. (cryptography is imported here and below, not
    at the top: most stand-in calls, apt-get and the like, need no keys.)"""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                         key_cert_sign=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def load_documents(path: str) -> dict[str, dict]:
    import yaml
    try:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    except FileNotFoundError:
        fail(f"unable to read config from \"{path}\" : open {path}: no such file or directory")
    except yaml.YAMLError as error:
        fail(f"error converting YAML to JSON: {error}")
    by_kind = {}
    for document in documents:
        api, kind = document.get("apiVersion", ""), document.get("kind", "")
        if api.startswith("kubeadm.k8s.io/") and api != "kubeadm.k8s.io/v1beta4":
            fail(f"your configuration file uses an old API spec: \"{api}\" (kind: \"{kind}\"); "
                 "this lab's kubeadm 1.31 expects kubeadm.k8s.io/v1beta4")
        by_kind[kind] = document
    return by_kind


def node_registration(document: dict) -> tuple[str, dict[str, str]]:
    import socket
    registration = document.get("nodeRegistration") or {}
    args = registration.get("kubeletExtraArgs") or []
    if not isinstance(args, list) or not all(isinstance(a, dict) and set(a) == {"name", "value"}
                                              for a in args):
        fail("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal object into Go "
             "struct field NodeRegistrationOptions.nodeRegistration.kubeletExtraArgs of type []v1beta4.Arg")
    name = registration.get("name") or socket.gethostname()
    return name, {a["name"]: a["value"] for a in args}


def preflight(kind: str, version_errors: list[str], warnings: list[str] = ()) -> None:
    errors = list(version_errors)
    for warning in warnings:
        print(f"\t{warning}", file=sys.stderr)
    # Files an earlier run left behind, which the real preflight refuses too.
    leftovers = {"init": ("/etc/kubernetes/manifests/kube-apiserver.yaml", "/var/lib/etcd/member"),
                 "join": ("/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/kubelet.conf")}[kind]
    for path in leftovers:
        if os.path.exists(path):
            check = "DirAvailable" if path.endswith("member") else "FileAvailable"
            errors.append(f"[ERROR {check}-{path.strip('/').replace('/', '-').replace('.', '-')}]: "
                          f"{path} already exists")
    if os.geteuid() != 0:
        errors.append("[ERROR IsPrivilegedUser]: user is not running as root")
    if (STATE / "swaps").exists() and (STATE / "swaps").read_text().strip():
        errors.append("[ERROR Swap]: running with swap on is not supported. Please disable swap")
    if sysctl_value("net.ipv4.ip_forward") != "1":
        errors.append("[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: "
                      "/proc/sys/net/ipv4/ip_forward contents are not set to 1")
    modules = (STATE / "modules").read_text().split() if (STATE / "modules").exists() else []
    if "br_netfilter" not in modules or sysctl_value("net.bridge.bridge-nf-call-iptables") != "1":
        errors.append("[ERROR FileContent--proc-sys-net-bridge-bridge-nf-call-iptables]: "
                      "/proc/sys/net/bridge/bridge-nf-call-iptables contents are not set to 1")
    if not installed_version("containerd.io") or not service_active("containerd"):
        errors.append("[ERROR CRI]: container runtime is not running")
    else:
        import tomllib
        try:
            config = tomllib.loads(Path("/etc/containerd/config.toml").read_text())
            runc = config["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runc"]
            systemd = runc["options"]["SystemdCgroup"] is True
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            systemd = False
        if not systemd:
            errors.append("[ERROR lab-CgroupDriver]: containerd does not use the systemd cgroup driver "
                          "that the kubelet is configured with (pods would crash-loop)")
    for tool, package in (("conntrack", "conntrack"), ("kubelet", "kubelet")):
        if not installed_version(package):
            errors.append(f"[ERROR FileExisting-{tool}]: {tool} not found in system path")
    taken = ["/etc/kubernetes/manifests/kube-apiserver.yaml"] if kind == "init" else \
        ["/etc/kubernetes/kubelet.conf", "/etc/kubernetes/pki/ca.crt"]
    for path in taken:
        if Path(path).exists():
            flat = path.strip("/").replace("/", "-")
            errors.append(f"[ERROR FileAvailable--{flat}]: {path} already exists")
    if errors:
        print("[preflight] Running pre-flight checks", file=sys.stderr)
        fail("error execution phase preflight: [preflight] Some fatal errors occurred:\n\t"
             + "\n\t".join(errors)
             + "\n[preflight] If you know what you are doing, you can make a check non-fatal with "
               "`--ignore-preflight-errors=...`")


def planted_failure(step: str) -> None:
    """A fault planted for a point inside a stand-in's work (common.sh's lab_fault
    plants them before it): faults/STEP.fail counts down ("always" for every call);
    what was written before this point stays, as when the real tool stops there."""
    faults = STATE / "faults"
    path = faults / f"{step}.fail"
    if not path.exists():
        return
    with open(faults / ".lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        left = path.read_text().strip()
        if left in ("", "0"):
            return
        if left != "always":
            path.write_text(f"{int(left) - 1}\n")
    message = faults / f"{step}.message"
    status = faults / f"{step}.status"
    fail(message.read_text().rstrip("\n") if message.exists() else f"lab: injected failure of {step}",
         int(status.read_text()) if status.exists() else 1)


def write(path: str, text: str, mode: int = 0o600) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def kubelet_files(node_name: str, kubelet_args: dict[str, str], cgroup_driver: str) -> None:
    import yaml
    flags = " ".join(f"--{k}={v}" for k, v in sorted(kubelet_args.items()))
    write("/var/lib/kubelet/kubeadm-flags.env",
          f'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock '
          f'--hostname-override={node_name} {flags}"\n', 0o644)
    write("/var/lib/kubelet/config.yaml", yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "cgroupDriver": cgroup_driver}), 0o644)
    set_service("kubelet", True)


def kubeadm_init(config_path: str, upload_certs: bool = False) -> None:
    import hashlib
    import socket
    import yaml
    documents = load_documents(config_path)
    init = documents.get("InitConfiguration") or {}
    cluster = documents.get("ClusterConfiguration") or {}
    kubelet = documents.get("KubeletConfiguration") or {}
    name, kubelet_args = node_registration(init)
    own = kubeadm_version()
    wanted = normalize_kubernetes_version(str(cluster.get("kubernetesVersion", f"v{own}"))).lstrip("v")
    warnings = []
    if minor_of(wanted) > minor_of(own):  # KubernetesVersionCheck: a warning, not an error
        warnings.append("[WARNING KubernetesVersion]: Kubernetes version is greater than kubeadm version. "
                        f"Please consider to upgrade kubeadm. Kubernetes version: {wanted}. "
                        f"Kubeadm version: {'.'.join(map(str, minor_of(own)))}.x")
    preflight("init", kubelet_version_errors(f"v{wanted}"), warnings)
    advertise = (init.get("localAPIEndpoint") or {}).get("advertiseAddress", "")
    endpoint = cluster.get("controlPlaneEndpoint") or f"{advertise}:6443"
    if ":" not in endpoint:
        endpoint += ":6443"
    tokens = init.get("bootstrapTokens") or [{}]
    with cluster_state() as state:
        if state.get("endpoint"):
            fail(f"lab: this lab's cluster is already served by {state['control_plane_host']}")
    ttl = parse_duration(str(tokens[0].get("ttl", "24h")))
    # kubeadm init's phases in their order (cmd/kubeadm/app/cmd/init.go, v1.31): certs,
    # kubeconfig, etcd and control-plane manifests, kubelet-start, wait-control-plane,
    # then upload-config, bootstrap-token ...: a run that stops in a phase leaves the
    # files of the phases before it, and the API server knows nothing before
    # wait-control-plane has passed. Faults can be planted at two of these points.
    ca_pem, ca_key_pem = new_ca()
    ca_hash = hashlib.sha256(ca_pem.encode()).hexdigest()
    write("/etc/kubernetes/pki/ca.crt", ca_pem, 0o644)
    write("/etc/kubernetes/pki/ca.key", ca_key_pem)
    # What the kubeadm-certs Secret carries to a joining control plane.
    CLUSTER.mkdir(parents=True, exist_ok=True)
    write(str(CLUSTER / "ca.key"), ca_key_pem)
    # Stacked etcd's CA and certificates (tests/lab/standins/etcd_member.py), valid
    # for the configured certificateValidityPeriod as kubeadm's leaf certificates are.
    import datetime
    import etcd_member
    valid_for = datetime.timedelta(seconds=parse_duration(
        str(cluster.get("certificateValidityPeriod", "8760h0m0s"))))
    etcd_member.make_ca()
    etcd_member.share_ca()
    etcd_member.issue_certificates(name, advertise, valid_for)
    planted_failure("kubeadm-init-kubeconfig")
    # The identities kubeadm 1.31 gives its kubeconfigs (app/phases/kubeconfig/kubeconfig.go):
    # admin.conf is in kubeadm:cluster-admins (bound to cluster-admin), super-admin.conf in
    # system:masters.
    for conf, user, groups in (
            ("admin.conf", "kubernetes-admin", ["kubeadm:cluster-admins"]),
            ("super-admin.conf", "kubernetes-super-admin", ["system:masters"]),
            ("kubelet.conf", f"system:node:{name}", ["system:nodes"]),
            ("controller-manager.conf", "system:kube-controller-manager", []),
            ("scheduler.conf", "system:kube-scheduler", [])):
        write(f"/etc/kubernetes/{conf}",
              kubeconfig(f"https://{endpoint}", ca_pem, user, client_certificate(
                  ca_pem, ca_key_pem, user, groups, valid_for.total_seconds() / 86400)))
    networking = cluster.get("networking") or {}
    write("/etc/kubernetes/manifests/kube-apiserver.yaml", yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "kube-apiserver", "namespace": "kube-system"},
        "spec": {"containers": [{
            "name": "kube-apiserver",
            "image": f"registry.k8s.io/kube-apiserver:v{wanted}",
            "command": ["kube-apiserver", f"--advertise-address={advertise}",
                        f"--service-cluster-ip-range={networking.get('serviceSubnet', '10.96.0.0/12')}",
                        "--secure-port=6443"]}]}}), 0o600)
    for component in ("kube-controller-manager", "kube-scheduler"):
        write(f"/etc/kubernetes/manifests/{component}.yaml",
              yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": component}}))
    etcd_member.write_manifest(name, advertise, f"{name}=https://{advertise}:2380")
    kubelet_files(name, kubelet_args, kubelet.get("cgroupDriver", "cgroupfs"))
    # The kubelet runs the real etcd from its manifest; wait-control-plane waits for it.
    etcd_member.sync()
    etcd_member.wait_healthy()
    etcd_member.publish_api_credentials(etcd_member.client_url())
    planted_failure("kubeadm-init-wait-control-plane")
    token = new_token()
    with cluster_state() as state:
        if state.get("endpoint"):
            fail(f"lab: this lab's cluster is already served by {state['control_plane_host']}")
        state.update({
            "endpoint": endpoint,
            "control_plane_host": socket.gethostname(),
            "ca_hash": ca_hash,
            "ca_pem": ca_pem,
            "kubernetes_version": f"v{wanted}",
            # kubeadm joins further control planes only to a cluster with one
            # (app/cmd/join.go: "doesn't have a stable controlPlaneEndpoint address").
            "control_plane_endpoint_set": bool(cluster.get("controlPlaneEndpoint")),
            "pod_subnet": (cluster.get("networking") or {}).get("podSubnet", ""),
            "service_subnet": (cluster.get("networking") or {}).get("serviceSubnet", ""),
            "tokens": [{"id": token.split(".")[0], "secret": token.split(".")[1],
                        "expires": time.time() + ttl if ttl else 0,
                        "description": tokens[0].get("description", "")}],
            "nodes": {name: {"address": kubelet_args.get("node-ip", advertise),
                             "role": "control-plane", "host": socket.gethostname(),
                             "kubelet_version": f"v{installed_version('kubelet').split('-')[0]}",
                             "api_server": f"v{wanted}", "registered": time.time()}},
        })
    # The kube-system namespace lives in etcd (a restore brings its UID back).
    import uuid
    etcd_member.write_kube_system(str(uuid.uuid4()))
    print(f"[init] Using Kubernetes version: v{wanted}\n"
          "[preflight] Running pre-flight checks\n"
          f"[certs] apiserver serving cert is signed for DNS names [kubernetes {name}] and IPs [{advertise}]\n"
          f"[bootstrap-token] Using token: {token}\n"
          "[addons] Applied essential addon: CoreDNS\n"
          "[addons] Applied essential addon: kube-proxy\n\n"
          "Your Kubernetes control-plane has initialized successfully!\n\n"
          "You can now join any number of machines by running the following on each node\n"
          "as root:\n\n"
          f"kubeadm join {endpoint} --token {token} \\\n"
          f"\t--discovery-token-ca-cert-hash sha256:{ca_hash}")
    if upload_certs:
        upload_certificates(None)


# --- the virtual IP: keepalived's choice of owner, haproxy's choice of backend -------
#
# keepalived and haproxy do not run in a node (the nodes share the host's network:
# no interface of their own for VRRP, and one port for three haproxy). Their
# configs are checked by the real binaries when systemctl (the stand-in) starts
# them, and each node publishes what it runs under CLUSTER/vrrp/<node>.json. The
# owner of the virtual IP is then chosen the way VRRP chooses it: among the live
# nodes whose keepalived runs, the highest priority after the weight of a failing
# check (the check: the local haproxy runs and has a ready backend). A node is
# live while its sshd answers (Node.stop kills its namespace, keepalived with it);
# an API server is ready while the etcd member of its node answers a quorum read
# (the lab's API server is the etcd behind it).
VRRP = CLUSTER / "vrrp"


def keepalived_settings(text: str) -> dict:
    settings = {"weight": 0}
    lines = [line.strip() for line in text.splitlines()]
    for index, line in enumerate(lines):
        words = line.split()
        if not words:
            continue
        if words[0] in ("priority", "weight", "virtual_router_id") and len(words) > 1:
            settings[words[0]] = int(words[1])
        elif words[0] == "unicast_src_ip":
            settings["address"] = words[1]
        elif words[0] == "interface":
            settings["interface"] = words[1]
        elif words[0] == "virtual_ipaddress":
            settings["vip"] = lines[index + 1].split()[0].split("/")[0]
    return settings


def haproxy_settings(text: str) -> dict:
    port, backends = 0, []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "bind":
            port = int(words[1].rsplit(":", 1)[1])
        elif len(words) >= 3 and words[0] == "server":
            backends.append(words[2].rsplit(":", 1)[0].strip("[]"))
    return {"port": port, "backends": backends}


def vrrp_publish(unit: str, active: bool) -> None:
    """systemctl start/restart/stop of haproxy or keepalived on this node."""
    import socket
    VRRP.mkdir(parents=True, exist_ok=True)
    path = VRRP / f"{socket.gethostname()}.json"
    with cluster_state():  # the cluster's lock
        entry = json.loads(path.read_text()) if path.exists() else {}
        if unit == "keepalived":
            entry["keepalived"] = active
            if active:
                entry.update(keepalived_settings(Path("/etc/keepalived/keepalived.conf").read_text()))
        else:
            entry["haproxy"] = active
            if active:
                entry["haproxy_config"] = haproxy_settings(Path("/etc/haproxy/haproxy.cfg").read_text())
        path.write_text(json.dumps(entry, sort_keys=True))


def _answers(address: str, port: int) -> bool:
    import socket
    try:
        socket.create_connection((address, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def restarting_api_servers() -> set[str]:
    """The addresses of control planes whose kube-apiserver pod is being replaced
    (set_manifest_version). Read without the lock: the record is replaced atomically."""
    path = CLUSTER / "cluster.json"
    nodes = json.loads(path.read_text()).get("nodes", {}) if path.exists() else {}
    return {n.get("address", "") for n in nodes.values() if n.get("api_server_restarting")}


def api_server_ready(address: str, known: dict) -> bool:
    """/readyz of the API server at `address`: not while its pod restarts, and its
    etcd member answers a quorum read (etcdctl endpoint health), as kube-apiserver's
    etcd check needs."""
    if address not in known:
        import etcd_member
        known[address] = address not in restarting_api_servers() and _answers(address, 2379) \
            and etcd_member.etcdctl(
            ["endpoint", "health", "--command-timeout=3s"], f"https://{address}:2379",
            etcd_member.API_CREDENTIALS, "apiserver-etcd-client").returncode == 0
    return known[address]


def vrrp_view() -> list[dict]:
    """Every published node: live, keepalived, healthy, effective priority, best first."""
    view, known = [], {}
    for path in sorted(VRRP.glob("*.json")) if VRRP.is_dir() else []:
        entry = json.loads(path.read_text())
        entry["node"] = path.stem
        entry["live"] = bool(entry.get("address")) and _answers(entry["address"], 22)
        ready = [b for b in (entry.get("haproxy_config") or {}).get("backends", [])
                 if entry.get("haproxy") and api_server_ready(b, known)]
        entry["ready_backends"] = ready
        entry["healthy"] = bool(entry.get("haproxy")) and bool(ready)
        entry["effective"] = entry.get("priority", 0) + (0 if entry["healthy"] else entry.get("weight", 0))
        view.append(entry)
    return sorted(view, key=lambda e: -e["effective"])


def vrrp_owner(vip: str) -> dict | None:
    candidates = [e for e in vrrp_view() if e.get("vip") == vip and e["live"] and e.get("keepalived")]
    return candidates[0] if candidates else None


def through_virtual_ip(server: str) -> None:
    """A request to https://VIP:PORT: refused unless a node holds the address and its
    haproxy listens on PORT with a ready API server behind it."""
    host, _, port = server.removeprefix("https://").rpartition(":")
    published = [e for e in vrrp_view() if e.get("vip") == host.strip("[]")]
    if not published:
        return  # not a virtual IP (the first control plane's address)
    owner = vrrp_owner(host.strip("[]"))
    if owner is None:
        fail(f"Unable to connect to the server: dial tcp {host}:{port}: connect: no route to host")
    config = owner.get("haproxy_config") or {}
    if not owner.get("haproxy") or str(config.get("port")) != port:
        fail(f"Unable to connect to the server: dial tcp {host}:{port}: connect: connection refused")
    if not owner["ready_backends"]:
        fail(f"Unable to connect to the server: EOF (haproxy on {owner['node']}: no API server ready)")


def vrrp(args: list[str]) -> None:
    """`standin.py vrrp owner VIP` | `vrrp view` | `vrrp publish UNIT on|off`."""
    if args[0] == "publish":
        vrrp_publish(args[1], args[2] == "on")
    elif args[0] == "owner":
        owner = vrrp_owner(args[1])
        print(owner["node"] if owner else "")
    else:
        print(json.dumps(vrrp_view(), indent=1))


def admin_cluster(kubeconfig_path: str) -> None:
    """Fail like kubeadm/kubectl do when the kubeconfig does not reach this lab's API server."""
    import base64
    import yaml
    path = Path(kubeconfig_path)
    if not path.exists():
        fail(f"failed to load admin kubeconfig: open {kubeconfig_path}: no such file or directory")
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    with cluster_state() as state:
        if not state.get("endpoint") or cluster["server"] != f"https://{state['endpoint']}":
            server = cluster["server"]
            fail(f"Unable to connect to the server: dial tcp {server.removeprefix('https://')}: "
                 "connect: connection refused")
    through_virtual_ip(cluster["server"])
    with cluster_state() as state:
        if base64.b64decode(cluster["certificate-authority-data"]).decode() != state["ca_pem"]:
            fail("Unable to connect to the server: tls: failed to verify certificate: "
                 "x509: certificate signed by unknown authority")


# Slice flags: repeatable, values comma-joined (pflag's StringSlice).
SLICE_FLAGS = {"--org", "--groups", "--usages", "--ignore-preflight-errors", "--skip-phases"}
TRUE_WORDS = {"1", "t", "T", "true", "TRUE", "True"}
FALSE_WORDS = {"0", "f", "F", "false", "FALSE", "False"}


def parse_flags(args: list[str], values: set[str], bools: set[str], refuse) -> \
        tuple[dict[str, str], set[str], list[str]]:
    """(options, flags, words) as pflag (cobra) reads a command line: `--name value`,
    `--name=value`, `-n value`, `-nvalue`; a bool flag also takes `--name=false`;
    `refuse(message)` is called with pflag's own message for an unknown flag or a
    missing value (spf13/pflag flag.go: "unknown flag: --%s", "unknown shorthand
    flag: %q in -%s", "flag needs an argument: %s")."""
    options: dict[str, str] = {}
    flags: set[str] = set()
    words: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "-" or not arg.startswith("-"):
            words.append(arg)
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in values:
                if not eq:
                    if i >= len(args):
                        refuse(f"flag needs an argument: {name}")
                    value = args[i]
                    i += 1
                options[name] = f"{options[name]},{value}" if name in SLICE_FLAGS and name in options \
                    else value
            elif name in bools:
                if not eq or value in TRUE_WORDS:
                    flags.add(name)
                elif value in FALSE_WORDS:
                    flags.discard(name)
                else:
                    refuse(f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: '
                           f'parsing "{value}": invalid syntax')
            else:
                refuse(f"unknown flag: {name}")
            continue
        short = arg[:2]
        if short in values:
            value = arg[2:].removeprefix("=")
            if not value:
                if i >= len(args):
                    refuse(f"flag needs an argument: '{arg[1]}' in {arg}")
                value = args[i]
                i += 1
            options[short] = value
            continue
        for char in arg[1:]:  # -it: each a bool shorthand
            if f"-{char}" not in bools:
                refuse(f"unknown shorthand flag: '{char}' in {arg}")
            flags.add(f"-{char}")
    return options, flags, words


def kubeadm_token(command: str, options: dict, flags: set) -> None:
    options = {"--ttl": "24h", "--description": "", **options}
    admin_cluster(options.get("--kubeconfig", "/etc/kubernetes/admin.conf"))
    if command == "token list":
        with cluster_state() as state:
            for t in state["tokens"]:
                print(f"{t['id']}.{t['secret']}   {t['description']}")
        return
    ttl = parse_duration(options["--ttl"])
    token = new_token()
    with cluster_state() as state:
        state["tokens"].append({"id": token.split(".")[0], "secret": token.split(".")[1],
                                "expires": time.time() + ttl if ttl else 0,
                                "description": options["--description"]})
        endpoint, ca_hash = state["endpoint"], state["ca_hash"]
    if "--print-join-command" in flags:
        # The real command ends its line with a space, too; with --certificate-key it
        # prints the control-plane join (app/util/kubeadm join command template).
        key = options.get("--certificate-key")
        extra = f"--control-plane --certificate-key {key} " if key else ""
        print(f"kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash sha256:{ca_hash} "
              + extra)
    else:
        print(token)


# --- control planes that join (kubeadm join --control-plane) -------------------------
# kubeadm keeps the shared certificates, encrypted with the certificate key, in the
# kubeadm-certs Secret, which it gives a TTL of two hours (app/constants:
# DefaultCertTokenDuration); the key is 32 random bytes, hex-encoded.
CERTIFICATE_KEY_TTL = 2 * 3600


def new_certificate_key() -> str:
    """`kubeadm certs certificate-key`."""
    import secrets
    return secrets.token_hex(32)


def upload_certificates(key: str | None) -> None:
    """`kubeadm init phase upload-certs --upload-certs [--certificate-key KEY]`, and
    init's own --upload-certs: the Secret replaced, under KEY or a fresh one."""
    if not os.path.exists("/etc/kubernetes/pki/ca.key"):
        fail("error execution phase upload-certs: error uploading certs: failed to load "
             "certificate for ca: open /etc/kubernetes/pki/ca.key: no such file or directory")
    if key is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", key):
        fail("error execution phase upload-certs: error decoding certificate key: "
             "encoding/hex: invalid byte or odd length")
    key = (key or new_certificate_key()).lower()
    with cluster_state() as state:
        state["kubeadm_certs"] = {"key": key, "expires": time.time() + CERTIFICATE_KEY_TTL}
    print("[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the "
          "\"kube-system\" Namespace\n[upload-certs] Using certificate key:\n" + key)


def downloaded_certificates(state: dict, key: str) -> None:
    """The control-prepare phase of a control-plane join: fail as kubeadm does without
    the Secret (never uploaded, or its two hours are over) or with another key."""
    if not state.get("control_plane_endpoint_set"):
        fail("error execution phase preflight: \nOne or more conditions for hosting a new control "
             "plane instance is not satisfied.\n\nunable to add a new control plane instance to a "
             "cluster that doesn't have a stable controlPlaneEndpoint address\n\nPlease ensure that:\n"
             "* The cluster has a stable controlPlaneEndpoint address.")
    if not key:
        fail("error execution phase control-plane-prepare/certs: error creating PKI assets: failure "
             "loading ca certificate: couldn't load the certificate file /etc/kubernetes/pki/ca.crt")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", key):
        fail("error execution phase control-plane-prepare/download-certs: error downloading certs: "
             "error decoding certificate key: encoding/hex: invalid byte or odd length")
    uploaded = state.get("kubeadm_certs")
    if not uploaded or uploaded["expires"] < time.time():
        fail("error execution phase control-plane-prepare/download-certs: error downloading certs: "
             "error downloading the secret: Secret \"kubeadm-certs\" was not found in the "
             "\"kube-system\" Namespace. This Secret might have expired. Please, run `kubeadm init "
             "phase upload-certs --upload-certs` on a control plane to generate a new one")
    if uploaded["key"] != key.lower():
        fail("error execution phase control-plane-prepare/download-certs: error downloading certs: "
             "error decrypting data: cipher: message authentication failed")


def control_plane_files(name: str, advertise: str, endpoint: str, ca_pem: str, ca_key_pem: str,
                        version: str) -> None:
    """What a control-plane join writes besides the kubelet's files: the shared CA,
    the static-pod manifests at the cluster's version (its ClusterConfiguration's
    kubernetesVersion) and admin.conf (kubeadm 1.31 writes no super-admin.conf on a
    join)."""
    import yaml
    write("/etc/kubernetes/pki/ca.crt", ca_pem, 0o644)
    write("/etc/kubernetes/pki/ca.key", ca_key_pem)
    write("/etc/kubernetes/admin.conf", kubeconfig(
        f"https://{endpoint}", ca_pem, "kubernetes-admin",
        client_certificate(ca_pem, ca_key_pem, "kubernetes-admin", ["kubeadm:cluster-admins"])))
    write("/etc/kubernetes/manifests/kube-apiserver.yaml", yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "kube-apiserver", "namespace": "kube-system"},
        "spec": {"containers": [{"name": "kube-apiserver",
                                 "image": f"registry.k8s.io/kube-apiserver:{version}",
                                 "command": ["kube-apiserver", f"--advertise-address={advertise}",
                                             "--secure-port=6443"]}]}}))
    for component in ("kube-controller-manager", "kube-scheduler"):
        write(f"/etc/kubernetes/manifests/{component}.yaml",
              yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": component}}))
    # The etcd CA came with the kubeadm-certs Secret; the member joins for real
    # (etcdctl member add, then started with --initial-cluster-state=existing).
    import datetime
    import etcd_member
    etcd_member.fetch_shared_ca()
    etcd_member.join(name, advertise, etcd_member.api_endpoints()[0], datetime.timedelta(days=365))
    print(f"[control-plane-join] {name}: etcd member and API server at {advertise}:6443")


def kubeadm_join(config_path: str) -> None:
    import socket
    documents = load_documents(config_path)
    join = documents.get("JoinConfiguration")
    if join is None:
        fail(f"no JoinConfiguration found in {config_path}")
    name, kubelet_args = node_registration(join)
    preflight("join", kubelet_version_errors(""))
    discovery = (join.get("discovery") or {}).get("bootstrapToken") or {}
    endpoint = discovery.get("apiServerEndpoint", "")
    token = str(discovery.get("token", ""))
    if not re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token):
        fail("the bootstrap token in the JoinConfiguration is not of the form "
             "\"[a-z0-9]{6}.[a-z0-9]{16}\"")
    token_id, token_secret = token.split(".")
    with cluster_state() as state:
        if not state.get("endpoint") or state["endpoint"] != endpoint:
            fail(f"couldn't validate the identity of the API Server: Get \"https://{endpoint}/api/v1/"
                 "namespaces/kube-public/configmaps/cluster-info?timeout=10s\": dial tcp "
                 f"{endpoint}: connect: connection refused")
        match = [t for t in state["tokens"] if t["id"] == token_id and t["secret"] == token_secret]
        if not match or (match[0]["expires"] and match[0]["expires"] < time.time()):
            fail("couldn't validate the identity of the API Server: could not find a JWS signature "
                 f"in the cluster-info ConfigMap for token ID \"{token_id}\"")
        pinned = [h.removeprefix("sha256:") for h in discovery.get("caCertHashes") or []]
        if state["ca_hash"] not in pinned and not discovery.get("unsafeSkipCAVerification"):
            fail("cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "
                 f"{['sha256:<redacted>' for _ in pinned]} are pinned")
        ca_pem, cluster_version = state["ca_pem"], state["kubernetes_version"]
        control_plane = join.get("controlPlane")
        if control_plane is not None:
            downloaded_certificates(state, str(control_plane.get("certificateKey") or ""))
            ca_key_pem = (CLUSTER / "ca.key").read_text() if (CLUSTER / "ca.key").exists() else ""
    # The preflight phase then reads the cluster's ClusterConfiguration, whose version
    # this kubeadm must support (FetchInitConfigurationFromCluster -> NormalizeKubernetesVersion).
    normalize_kubernetes_version(cluster_version)
    # kubelet-start (app/cmd/phases/join/kubelet.go, v1.31): bootstrap-kubelet.conf and
    # the CA are written first; bootstrap-kubelet.conf is removed when the phase ends,
    # however it ends; the CA stays. Then a Ready Node of this name refuses the join;
    # then the kubelet starts, registers its Node and writes kubelet.conf (its client
    # certificate under /var/lib/kubelet/pki, from its TLS bootstrap).
    bootstrap = "/etc/kubernetes/bootstrap-kubelet.conf"
    try:
        write(bootstrap, kubeconfig(f"https://{endpoint}", ca_pem, "tls-bootstrap-token-user",
                                    {"token": f"{token_id}.{token_secret}"}))
        if not os.path.exists("/etc/kubernetes/pki/ca.crt"):
            write("/etc/kubernetes/pki/ca.crt", ca_pem, 0o644)
        with cluster_state() as state:
            if name in state["nodes"]:
                fail(f"error execution phase kubelet-start: a Node with name \"{name}\" and status "
                     "\"Ready\" already exists in the cluster. You must delete the existing Node or "
                     "change the name of this new joining Node\n"
                     "To see the stack trace of this error execute with --v=5 or higher")
        kubelet_files(name, kubelet_args, "systemd")
        print("[kubelet-start] Starting the kubelet")
        planted_failure("kubeadm-join-kubelet-start")
        if control_plane is not None:
            advertise = (control_plane.get("localAPIEndpoint") or {}).get(
                "advertiseAddress", kubelet_args.get("node-ip", ""))
            control_plane_files(name, advertise, endpoint, ca_pem, ca_key_pem, cluster_version)
        with cluster_state() as state:
            state["nodes"][name] = {"address": kubelet_args.get("node-ip", ""),
                                    "role": "control-plane" if control_plane is not None else "worker",
                                    "token_id": token_id, "host": socket.gethostname(),
                                    "kubelet_version": f"v{installed_version('kubelet').split('-')[0]}",
                                    "registered": time.time()}
            if control_plane is not None:
                state["nodes"][name]["api_server"] = cluster_version
        pem = "/var/lib/kubelet/pki/kubelet-client-current.pem"
        write("/etc/kubernetes/kubelet.conf", kubeconfig(f"https://{endpoint}", ca_pem, "default-auth",
                                                         {"client-certificate": pem, "client-key": pem}))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(bootstrap)
    print("[preflight] Running pre-flight checks\n"
          "[kubelet-start] Starting the kubelet\n\n"
          "This node has joined the cluster:\n"
          "* Certificate signing request was sent to apiserver and a response was received.\n"
          "* The Kubelet was informed of the new secure connection details.")


def kubeadm_reset(flags: set) -> None:
    import shutil
    import socket
    if "-f" not in flags and "--force" not in flags:
        fail("[reset] Are you sure you want to proceed? [y/N]: aborted reset operation")
    if os.geteuid() != 0:
        fail("[ERROR IsPrivilegedUser]: user is not running as root")
    set_service("kubelet", False)
    # This node's etcd member leaves (if it has peers) and stops; its data goes below.
    import etcd_member
    etcd_member.reset()
    with cluster_state() as state:
        # The control plane's etcd goes with its reset: the cluster is gone.
        if state.get("control_plane_host") == socket.gethostname():
            state.clear()
            with contextlib.suppress(FileNotFoundError):
                (CLUSTER / "cni-ready").unlink()
    # Like the real reset: the contents of these directories go, the directories stay.
    for directory in ("/etc/kubernetes/manifests", "/etc/kubernetes/pki", "/var/lib/kubelet",
                      "/var/lib/etcd"):
        if Path(directory).is_dir():
            for child in Path(directory).iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for conf in ("admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf",
                 "controller-manager.conf", "scheduler.conf"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/etc/kubernetes/{conf}")
    print("[reset] Deleted contents of the etcd data directory: /var/lib/etcd\n"
          "[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet /etc/kubernetes/pki]\n\n"
          "The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d\n\n"
          "The reset process does not reset or clean up iptables rules or IPVS tables.\n\n"
          "The reset process does not clean your kubeconfig files and you must remove them manually.")


def kubeadm_kubeconfig_user(options: dict) -> None:
    """`kubeadm kubeconfig user`: a kubeconfig whose client certificate, signed by the
    CA in the config's certificatesDir, has CN --client-name and O each --org."""
    import base64
    import yaml
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    organizations = [o for o in options.get("--org", "").split(",") if o]
    client = options.get("--client-name")
    if not client:
        fail('Error: required flag(s) "client-name" not set')
    if "--token" in options:
        fail("lab kubeadm: kubeconfig user --token is not emulated")
    cluster: dict = {}
    if options.get("--config"):
        cluster = load_documents(options["--config"]).get("ClusterConfiguration") or {}
    cert_dir = cluster.get("certificatesDir", "/etc/kubernetes/pki")
    try:
        ca_pem = Path(f"{cert_dir}/ca.crt").read_text()
        ca_key_pem = Path(f"{cert_dir}/ca.key").read_text()
    except OSError:
        fail(f"failure loading ca certificate authority: couldn't load the certificate file "
             f"{cert_dir}/ca.crt: open {cert_dir}/ca.crt: no such file or directory")
    validity = parse_duration(options.get("--validity-period", "8760h"))
    if validity > 8760 * 3600:
        print("W0101 WARNING: the specified certificate validity period is longer than the "
              "default duration 8760h0m0s, this may increase security risks.", file=sys.stderr)
    endpoint = cluster.get("controlPlaneEndpoint")
    if not endpoint:
        with cluster_state() as state:
            endpoint = state.get("endpoint", "")
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
                        + [x509.NameAttribute(NameOID.COMMON_NAME, client)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(seconds=validity))
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                         key_cert_sign=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cluster_name = cluster.get("clusterName", "kubernetes")
    pem = lambda data: base64.b64encode(data).decode()  # noqa: E731
    print(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {
            "server": f"https://{endpoint}", "certificate-authority-data": pem(ca_pem.encode())}}],
        "contexts": [{"name": f"{client}@{cluster_name}",
                      "context": {"cluster": cluster_name, "user": client}}],
        "current-context": f"{client}@{cluster_name}",
        "preferences": {},
        "users": [{"name": client, "user": {
            "client-certificate-data": pem(cert.public_bytes(serialization.Encoding.PEM)),
            "client-key-data": pem(key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                                     serialization.NoEncryption()))}}],
    }, sort_keys=False), end="")


IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")


def kubeadm_version() -> str:
    return installed_version("kubeadm").split("-")[0]


def minor_of(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def semantic(version: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", version)
    if not match:
        fail(f'couldn\'t parse Kubernetes version "{version}": could not parse "{version}" as version')
    return tuple(int(g) for g in match.groups())


def minimum_control_plane_version() -> tuple[int, int, int]:
    """kubeadm's MinimumControlPlaneVersion: one minor below its own
    (cmd/kubeadm/app/constants/constants.go, getSkewedKubernetesVersion(-1), v1.31)."""
    major, minor = minor_of(kubeadm_version())
    return major, minor - 1, 0


def normalize_kubernetes_version(version: str) -> str:
    """kubeadm's NormalizeKubernetesVersion (app/util/config/common.go, v1.31): every
    command that takes a Kubernetes version (init, join through the cluster's
    ClusterConfiguration, config images pull) refuses one older than
    MinimumControlPlaneVersion. A newer one passes here: init's preflight only warns
    about it (KubernetesVersionCheck), and images pull has no preflight."""
    wanted = semantic(version)
    floor = minimum_control_plane_version()
    if wanted < floor:
        fail("this version of kubeadm only supports deploying clusters with the control plane version "
             f">= {'.'.join(map(str, floor))}. Current version: v{'.'.join(map(str, wanted))}\n"
             "To see the stack trace of this error execute with --v=5 or higher")
    return "v" + ".".join(map(str, wanted))


def kubelet_version_errors(control_plane: str) -> list[str]:
    """kubeadm's KubeletVersionCheck (app/preflight/checks.go, v1.31): the kubelet may
    not be older than MinimumKubeletVersion (three minors below kubeadm's own); when
    the control plane version is known (init; join passes "") not of a newer minor."""
    kubelet = installed_version("kubelet").split("-")[0]
    if not kubelet:
        return []
    major, minor = minor_of(kubeadm_version())
    if minor_of(kubelet) < (major, minor - 3):
        return [f'[ERROR KubeletVersion]: Kubelet version "v{kubelet}" is lower than kubeadm can support. '
                "Please upgrade kubelet"]
    if control_plane and minor_of(kubelet) > minor_of(control_plane):
        return ["[ERROR KubeletVersion]: the kubelet version is higher than the control plane version. "
                "This is not a supported version skew and may lead to a malfunctional cluster. "
                f'Kubelet version: "v{kubelet}" Control plane version: "{control_plane}"']
    return []


IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")


def kubeadm_images(options: dict) -> None:
    version = options.get("--kubernetes-version", "")
    if not version:
        fail("lab kubeadm: pass --kubernetes-version")
    version = normalize_kubernetes_version(version)
    if not service_active("containerd"):
        fail(f"failed to pull image \"registry.k8s.io/kube-apiserver:{version}\": output: "
             "validate service connection: validate CRI v1 image API for endpoint "
             "\"unix:///run/containerd/containerd.sock\": connect: no such file or directory")
    images = [f"registry.k8s.io/{i}:{version}" for i in IMAGES]
    images += ["registry.k8s.io/coredns/coredns:v1.11.3", "registry.k8s.io/pause:3.10",
               "registry.k8s.io/etcd:3.5.15-0"]
    pulled = STATE / "images"
    have = set(pulled.read_text().split()) if pulled.exists() else set()
    for image in images:
        print(f"[config/images] Pulled {image}")
    pulled.write_text("".join(f"{i}\n" for i in sorted(have | set(images))))


# The flags of each kubeadm command the lab models: (taking a value, bools), from
# `kubeadm <command> --help` of v1.31 (cmd/kubeadm/app/cmd/options/constant.go and
# each command's file); the global ones are kubeadm's own and klog's.
KUBEADM_GLOBAL = ({"--rootfs", "--log-file", "--log-file-max-size", "-v", "--v"},
                  {"--add-dir-header", "--one-output", "--skip-headers", "--skip-log-headers"})
KUBEADM_COMMANDS = {
    "version": ({"-o", "--output"}, set()),
    "init": ({"--config", "--ignore-preflight-errors", "--skip-phases", "--cri-socket",
              "--apiserver-advertise-address", "--apiserver-bind-port", "--apiserver-cert-extra-sans",
              "--cert-dir", "--certificate-key", "--control-plane-endpoint", "--feature-gates",
              "--image-repository", "--kubernetes-version", "--node-name", "--patches",
              "--pod-network-cidr", "--service-cidr", "--service-dns-domain", "--token", "--token-ttl"},
             {"--dry-run", "--upload-certs", "--skip-certificate-key-print", "--skip-token-print"}),
    "join": ({"--config", "--ignore-preflight-errors", "--skip-phases", "--cri-socket", "--token",
              "--discovery-token", "--discovery-token-ca-cert-hash", "--discovery-file",
              "--tls-bootstrap-token", "--node-name", "--certificate-key", "--apiserver-advertise-address",
              "--apiserver-bind-port", "--patches"},
             {"--dry-run", "--control-plane", "--discovery-token-unsafe-skip-ca-verification"}),
    "reset": ({"--cri-socket", "--ignore-preflight-errors", "--kubeconfig", "--cert-dir", "--skip-phases",
               "--config"}, {"-f", "--force", "--dry-run", "--cleanup-tmp-dir"}),
    "token create": ({"--ttl", "--description", "--groups", "--usages", "--config", "--certificate-key",
                      "--kubeconfig"}, {"--print-join-command", "--dry-run"}),
    "token list": ({"-o", "--output", "--kubeconfig", "--config"},
                   {"--allow-missing-template-keys", "--show-managed-fields", "--dry-run"}),
    "config images pull": ({"--config", "--cri-socket", "--kubernetes-version", "--image-repository",
                            "--feature-gates", "--kubeconfig"}, set()),
    "kubeconfig user": ({"--config", "--client-name", "--org", "--token", "--validity-period"}, set()),
    "upgrade plan": ({"--config", "--kubeconfig", "--ignore-preflight-errors", "--feature-gates", "-o",
                      "--output"}, {"--allow-experimental-upgrades", "--allow-release-candidate-upgrades",
                                    "--print-config", "--show-managed-fields"}),
    "upgrade apply": ({"--config", "--kubeconfig", "--ignore-preflight-errors", "--feature-gates", "--patches"},
                      {"-y", "--yes", "-f", "--force", "--dry-run", "--etcd-upgrade", "--certificate-renewal",
                       "--allow-experimental-upgrades", "--allow-release-candidate-upgrades", "--print-config"}),
    "upgrade node": ({"--kubeconfig", "--ignore-preflight-errors", "--patches", "--skip-phases"},
                     {"--dry-run", "--etcd-upgrade", "--certificate-renewal"}),
    "certs certificate-key": (set(), set()),
    "certs check-expiration": ({"-o", "--output", "--config", "--cert-dir", "--kubeconfig"},
                               {"--allow-missing-template-keys", "--show-managed-fields"}),
    "certs renew all": ({"--config", "--cert-dir", "--kubeconfig"}, set()),
    "init phase upload-certs": ({"--certificate-key", "--config", "--kubeconfig"},
                                {"--upload-certs", "--skip-certificate-key-print", "--dry-run"}),
}


def kubeadm_refuse(message: str) -> None:
    # kubeadm silences cobra and prints the error through its CheckErr
    # (cmd/kubeadm/app/util/error.go): the message, then the stack-trace hint; exit 1.
    fail(f"{message}\nTo see the stack trace of this error execute with --v=5 or higher")


def command_path(args: list[str], commands, global_values: set[str]) -> str:
    """The (sub)command named by the words before any of its own flags."""
    words, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            i += 2 if arg in global_values else 1
            continue
        words.append(arg)
        i += 1
    for length in (3, 2, 1):
        if " ".join(words[:length]) in commands:
            return " ".join(words[:length])
    return " ".join(words[:2])


def kubeadm(args: list[str]) -> None:
    require_installed("kubeadm", "kubeadm")
    command = command_path(args, KUBEADM_COMMANDS, KUBEADM_GLOBAL[0])
    if command not in KUBEADM_COMMANDS:
        fail(f"lab kubeadm: unsupported command {command}")
    values, bools = KUBEADM_COMMANDS[command]
    options, flags, words = parse_flags(args, values | KUBEADM_GLOBAL[0], bools | KUBEADM_GLOBAL[1],
                                        kubeadm_refuse)
    if command == "version":
        print(f"v{kubeadm_version()}")
    elif command == "init":
        kubeadm_init(options["--config"], upload_certs="--upload-certs" in flags)
    elif command == "init phase upload-certs":
        admin_cluster(options.get("--kubeconfig", "/etc/kubernetes/admin.conf"))
        if "--upload-certs" not in flags:
            print("[upload-certs] Skipping phase. Please see --upload-certs")
        else:
            upload_certificates(options.get("--certificate-key"))
    elif command == "certs certificate-key":
        print(new_certificate_key())
    elif command == "certs check-expiration":
        import certs
        certs.check_expiration(options.get("-o", options.get("--output", "")))
    elif command == "certs renew all":
        import certs
        certs.renew_all(options.get("--config", ""))
    elif command == "join":
        if "--config" not in options:
            fail("lab kubeadm: join is only emulated with --config (a JoinConfiguration)")
        kubeadm_join(options["--config"])
    elif command.startswith("token "):
        kubeadm_token(command, options, flags)
    elif command == "reset":
        kubeadm_reset(flags)
    elif command == "config images pull":
        kubeadm_images(options)
    elif command == "kubeconfig user":
        kubeadm_kubeconfig_user(options)
    elif command.startswith("upgrade "):
        kubeadm_upgrade(command, options, flags, words)


# How long a control plane's kube-apiserver is away while the kubelet replaces its
# static pod (kubeadm's upgrade moves the manifest, then waits for the new pod): long
# enough that a client polling through the virtual IP meets it.
API_SERVER_RESTART_SECONDS = 1.0


def set_manifest_version(version: str) -> None:
    """The static pods' images move to `version` (what apply and node do on a control
    plane): this node's API server is not ready while its pod restarts, so haproxy
    sends requests to the other control planes' meanwhile (api_server_ready)."""
    import socket
    import yaml

    def mark(**fields) -> None:
        with cluster_state() as state:
            for node in state.get("nodes", {}).values():
                if node.get("host") == socket.gethostname():
                    node.update(fields)

    path = Path("/etc/kubernetes/manifests/kube-apiserver.yaml")
    manifest = yaml.safe_load(path.read_text())
    manifest["spec"]["containers"][0]["image"] = f"registry.k8s.io/kube-apiserver:{version}"
    mark(api_server_restarting=True)
    try:
        write(str(path), yaml.safe_dump(manifest), 0o600)
        planted = STATE / "faults" / "kube-apiserver-restart.delay"  # a longer restart
        time.sleep(float(planted.read_text()) if planted.exists() else API_SERVER_RESTART_SECONDS)
    finally:
        # Its mirror pod (kube-system/kube-apiserver-NODE) shows the new image.
        mark(api_server_restarting=False, api_server=version)


def kubeadm_upgrade(command: str, options: dict, flags: set, words: list[str]) -> None:
    """kubeadm upgrade plan/apply/node (cmd/kubeadm/app/phases/upgrade/policy.go, v1.31+):
    apply refuses a target newer than kubeadm itself, one more than a minor above the
    cluster, or below it; node needs a kubeadm of the cluster's version."""
    if os.geteuid() != 0:
        fail("[ERROR IsPrivilegedUser]: user is not running as root")
    own = f"v{kubeadm_version()}"
    with cluster_state() as state:
        if not state.get("endpoint"):
            fail("couldn't create a Kubernetes client from file \"/etc/kubernetes/admin.conf\": "
                 "failed to load admin kubeconfig: open /etc/kubernetes/admin.conf: no such file or directory")
        cluster = state["kubernetes_version"]
    if command == "upgrade node":
        if semantic(own)[:2] < semantic(cluster)[:2]:
            kubeadm_refuse(f"the kubeadm version {own} is older than the cluster's {cluster}: "
                           "upgrade kubeadm first")
        if Path("/etc/kubernetes/manifests/kube-apiserver.yaml").exists():
            # The control-plane phase (app/cmd/phases/upgrade/node/controlplane.go) moves
            # the static pods to the cluster's kubernetesVersion, which only `apply` raises:
            # before it, a control plane stays at the old version (and a newer kubelet on
            # it is then refused at its restart).
            print(f"[upgrade] Upgrading your Static Pod-hosted control plane instance to version \"{cluster}\"...")
            set_manifest_version(cluster)
            print("[upgrade/staticpods] Component \"kube-apiserver\" upgraded successfully!")
        print("[upgrade] The configuration for this node was successfully updated!\n"
              "[upgrade] Now you should go ahead and upgrade the kubelet package using your package manager.")
        return
    target = words[2] if len(words) > 2 else own
    wanted, have, tool = semantic(target), semantic(cluster), semantic(own)
    if command == "upgrade plan":
        print(f"[upgrade/versions] Cluster version: {cluster}\n[upgrade/versions] kubeadm version: {own}\n"
              f"Upgrade to the latest version in the v{tool[0]}.{tool[1]} series: "
              f"kubeadm upgrade apply {normalize_kubernetes_version(target)}")
        return
    if not Path("/etc/kubernetes/manifests/kube-apiserver.yaml").exists():
        kubeadm_refuse("[upgrade/apply] FATAL: this node is not a control plane")
    if wanted > tool:
        kubeadm_refuse(f"[upgrade/version] FATAL: the --version argument is invalid due to these fatal errors:\n\n"
                       f"\t- Specified version to upgrade to \"{target}\" is higher than the kubeadm version "
                       f"\"{own}\". Upgrade kubeadm first using the tool you used to install kubeadm")
    if wanted[:2] > (have[0], have[1] + 1):
        kubeadm_refuse(f"[upgrade/version] FATAL: the --version argument is invalid due to these fatal errors:\n\n"
                       f"\t- Specified version to upgrade to \"{target}\" is too high; kubeadm can upgrade only "
                       "1 minor version at a time")
    if wanted < have:
        kubeadm_refuse(f"[upgrade/version] FATAL: the --version argument is invalid due to these fatal errors:\n\n"
                       f"\t- Specified version to upgrade to \"{target}\" is lower than the cluster version "
                       f"\"{cluster}\". Downgrades are not supported yet")
    if "-y" not in flags and "--yes" not in flags and "-f" not in flags and "--force" not in flags:
        fail("[upgrade] Are you sure you want to proceed? [y/N]: won't proceed; the user didn't answer (Y|y)")
    planted_failure("kubeadm-upgrade-apply")
    set_manifest_version(f"v{'.'.join(map(str, wanted))}")
    with cluster_state() as state:
        state["kubernetes_version"] = f"v{'.'.join(map(str, wanted))}"
    print(f"[upgrade/successful] SUCCESS! Your cluster was upgraded to \"{state['kubernetes_version']}\". Enjoy!")


def kubelet_restart() -> None:
    """systemctl (re)start kubelet on a joined node: the kubelet registers its version,
    and one newer than the API server is refused (version-skew policy)."""
    import socket
    version = f"v{installed_version('kubelet').split('-')[0]}"
    with cluster_state() as state:
        cluster = state.get("kubernetes_version")
        node = next((n for n in state.get("nodes", {}).values() if n.get("host") == socket.gethostname()), None)
        if not cluster or node is None:
            return
        if semantic(version)[:2] > semantic(cluster)[:2]:
            fail(f"Job for kubelet.service failed: the kubelet {version} is newer than the API server "
                 f"{cluster}, which the version-skew policy does not allow (kubelet exited).")
        node["kubelet_version"] = version


# --- kubectl --------------------------------------------------------------------------

def jsonpath(document, expression: str) -> str:
    value = document
    for part in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", expression.strip("{}")):
        key, index = part
        value = value[int(index)] if index else value[key]
    return value if isinstance(value, str) else json.dumps(value)


def ready_delay() -> float:
    """Seconds a kubelet takes to report Ready once it is registered and the CNI runs:
    the `kubectl-wait` delay planted on the node that asks (bench_lab.py plants it)."""
    path = STATE / "faults" / "kubectl-wait.delay"
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        return 0.0


def ready_at(state: dict, name: str) -> float | None:
    """When the node reports Ready: a kubelet does once the CNI (Calico) runs, which
    the lab marks when the program's Calico release is "installed" (the Kubernetes
    side is mocked), plus the planted delay. None while it cannot be."""
    node = state.get("nodes", {}).get(name)
    cni = CLUSTER / "cni-ready"
    if node is None or not cni.exists() or not pools_fit(cni.read_text().split()[1:], state.get("pod_subnet", "")):
        return None
    return max(cni.stat().st_mtime, node.get("registered", 0.0)) + ready_delay()


def pools_fit(pools: list[str], pod_subnet: str) -> bool:
    """Whether Calico comes up with these IP pools: the tigera operator refuses an
    Installation whose pool lies outside the cluster's pod CIDR (kubeadm's podSubnet,
    read from the kubeadm-config ConfigMap; operator pkg/controller/installation,
    validation of calicoNetwork.ipPools), and calico-node never starts."""
    if not pools or not pod_subnet:
        return False
    if all(pool == pod_subnet for pool in pools):
        return True
    import ipaddress
    try:
        subnets = [ipaddress.ip_network(s.strip()) for s in pod_subnet.split(",")]
        return all(any(ipaddress.ip_network(pool).version == s.version
                       and ipaddress.ip_network(pool).subnet_of(s) for s in subnets) for pool in pools)
    except ValueError:
        return False


def record_planted(step: str, seconds: float) -> None:
    """As common.sh's lab_planted: a planted delay this stand-in serves."""
    with contextlib.suppress(OSError):
        path = Path(os.environ.get("LAB_DELAYS", "/var/log/lab/delays.log"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as log:
            arguments = " ".join(sys.argv[2:]).replace("\t", " ").replace("\n", " ")
            log.write(f"{time.time():.6f}\t{step}\t{seconds:g}\t{arguments}\n")


def node_ready(state: dict, name: str) -> bool:
    if state.get("nodes", {}).get(name, {}).get("not_ready"):  # planted: a broken kubelet
        return False
    at = ready_at(state, name)
    return at is not None and time.time() >= at


# --- pods that mount claims (the upload helper pods) -------------------------------
# A pod is "scheduled" on the node where kubectl runs (the control plane) and is
# Ready once every claim it mounts exists and has a StorageClass; the first pod
# binds a claim to a directory on that node, named as local-path-provisioner
# names it, /opt/local-path-provisioner/pvc-<uid>_<namespace>_<claim>. `kubectl
# exec` runs the command on that node in a private mount namespace in which each
# of the pod's mounts (under /mnt) is the claim's directory.

VOLUMES_DIR = "/opt/local-path-provisioner"


def pod_problem(state: dict, pod: dict) -> str:
    """Why the pod is not Ready ("" when it is), binding its claims if it can."""
    import socket
    classes = state.get("storage_classes", {})
    for mount in pod["mounts"]:
        claim = state.get("claims", {}).get(f"{pod['namespace']}/{mount['claim']}")
        if claim is None:
            return f'persistentvolumeclaim "{mount["claim"]}" not found'
        wanted = claim.get("storageClassName")
        if (wanted and wanted not in classes) or \
                (not wanted and not any(c.get("default") for c in classes.values())):
            return f'persistentvolumeclaim "{mount["claim"]}" is Pending: no StorageClass ' \
                   f'{wanted or "(default)"}'
        if "path" not in claim:
            claim["path"] = f"{VOLUMES_DIR}/pvc-{claim['uid']}_{pod['namespace']}_{mount['claim']}"
            claim["node"] = socket.gethostname()
            os.makedirs(claim["path"], mode=0o777, exist_ok=True)
            os.chmod(claim["path"], 0o777)  # local-path's setup: mkdir -m 0777
        elif claim["node"] != socket.gethostname():
            return f"lab: claim {mount['claim']} lives on {claim['node']}; lab pods run where kubectl runs"
    return ""


def pod_apply(documents: list) -> None:
    import socket
    with cluster_state() as state:
        for document in documents:
            if not isinstance(document, dict) or document.get("kind") != "Pod":
                fail(f"lab kubectl: apply of {document.get('kind') if isinstance(document, dict) else document!r} "
                     "is not emulated (only Pods)")
            meta, spec = document["metadata"], document["spec"]
            namespace = meta.get("namespace", "default")
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            mounts = []
            for container in spec["containers"]:
                for mount in container.get("volumeMounts", []):
                    claim = volumes[mount["name"]].get("persistentVolumeClaim", {}).get("claimName")
                    if not claim:
                        fail("lab kubectl: only persistentVolumeClaim volumes are emulated")
                    if not mount["mountPath"].startswith("/mnt/"):
                        fail("lab kubectl: mounts outside /mnt are not emulated")
                    mounts.append({"claim": claim, "path": mount["mountPath"],
                                   "readOnly": bool(mount.get("readOnly"))})
            key = f"{namespace}/{meta['name']}"
            existed = key in state.setdefault("pods", {})
            owners = [o.get("kind") for o in meta.get("ownerReferences") or [] if o.get("controller")]
            state["pods"][key] = {"namespace": namespace, "name": meta["name"], "mounts": mounts,
                                  "image": spec["containers"][0].get("image", ""),
                                  "node": socket.gethostname(), "controller": owners[0] if owners else ""}
            print(f"pod/{meta['name']} {'configured' if existed else 'created'}")


def pod_wait(namespace: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with cluster_state() as state:
            pod = state.get("pods", {}).get(f"{namespace}/{name}")
            if pod is None:
                fail(f'Error from server (NotFound): pods "{name}" not found')
            problem = pod_problem(state, pod)
        if not problem:
            print(f"pod/{name} condition met")
            return
        if time.monotonic() >= deadline:
            fail(f"error: timed out waiting for the condition on pods/{name} ({problem})")
        time.sleep(0.2)


def pod_exec(namespace: str, name: str, command: list[str]) -> None:
    with cluster_state() as state:
        pod = state.get("pods", {}).get(f"{namespace}/{name}")
        if pod is None:
            fail(f'Error from server (NotFound): pods "{name}" not found')
        problem = pod_problem(state, pod)
        if problem:
            fail(f"error: unable to upgrade connection: container not found ({problem})")
        claims = state["claims"]
        mounts = [(m["path"], claims[f"{namespace}/{m['claim']}"]["path"], m["readOnly"])
                  for m in pod["mounts"]]
    if not command:
        fail("error: you must specify at least one command for the container")
    lines = ["set -e", "mount -t tmpfs -o mode=0755 lab-pod /mnt"]
    for target, source, read_only in mounts:
        lines.append(f"mkdir -p {shlex.quote(target)}")
        lines.append(f"mount --bind {shlex.quote(source)} {shlex.quote(target)}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {shlex.quote(target)}")
    lines.append('exec "$@"')
    # The stand-in's own process becomes the command: stdin and stdout stream through.
    os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", "bash", "-c",
                          "\n".join(lines), "lab-pod", *command])


def daemonset_pods(name: str) -> list[str]:
    """The DaemonSet-managed pods a node runs: kube-proxy (a kubeadm addon) on every
    node, and calico-node once the CNI runs (the operator's calico-system namespace).
    Their suffixes are stable per node, in Kubernetes' generated-name alphabet."""
    import hashlib
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256(name.encode()).digest()
    suffix = "".join(alphabet[b % len(alphabet)] for b in digest[:5])
    pods = [f"kube-system/kube-proxy-{suffix}"]
    if (CLUSTER / "cni-ready").exists():
        pods.insert(0, f"calico-system/calico-node-{suffix}")
    return pods


def drain(state: dict, name: str, flags: set) -> None:
    """kubectl drain's pod filters and evictions (staging/src/k8s.io/kubectl/pkg/drain/
    filters.go and cmd/drain/drain.go, v1.31): DaemonSet-managed pods refuse the drain
    without --ignore-daemonsets (and are never evicted), pods no controller manages
    refuse it without --force; the others are evicted."""
    daemons = daemonset_pods(name)
    here = [key for key, pod in state.get("pods", {}).items() if pod.get("node") == name]
    errors, warnings = [], []
    if daemons:
        if "--ignore-daemonsets" in flags:
            warnings.append(f"ignoring DaemonSet-managed Pods: {', '.join(daemons)}")
        else:
            errors.append("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "
                          + ", ".join(daemons))
    bare = [key for key in here if not state["pods"][key].get("controller")]
    if bare:
        if "--force" in flags:
            warnings.append(f"deleting Pods that declare no controller: {', '.join(bare)}")
        else:
            errors.append("cannot delete Pods that declare no controller (use --force to override): "
                          + ", ".join(bare))
    if errors:
        joined = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
        fail(f'error: unable to drain node "{name}" due to error: {joined}, continuing command...\n'
             f"There are pending nodes to be drained:\n {name}\n{joined}")
    for warning in warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    for key in sorted(here):
        print(f"evicting pod {key}")
    for key in sorted(here):
        del state["pods"][key]
        print(f"pod/{key.split('/', 1)[1]} evicted")
    print(f"node/{name} drained")


def identity(config_path: str, ca_pem: str) -> tuple[str, list[str]]:
    """(user, groups) the API server reads from the kubeconfig's client certificate:
    CN and O, once the certificate is found signed by the cluster CA."""
    import base64
    import yaml
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.x509.oid import NameOID
    config = yaml.safe_load(Path(config_path).read_text())
    user = (config.get("users") or [{}])[0].get("user") or {}
    if "client-certificate-data" in user:
        pem = base64.b64decode(user["client-certificate-data"])
    elif "client-certificate" in user:
        try:
            pem = Path(user["client-certificate"]).read_bytes()
        except OSError as error:
            fail(f"error: unable to read client-cert {user['client-certificate']} for default-auth due to "
                 f"open {user['client-certificate']}: {error.strerror.lower()}")
    else:
        fail("error: You must be logged in to the server (Unauthorized)")
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        fail("error: tls: failed to find any PEM data in certificate input")
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    try:
        key = ca.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                       cert.signature_hash_algorithm)
    except InvalidSignature:
        fail("error: You must be logged in to the server (Unauthorized)")
    common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    groups = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (common[0].value if common else ""), groups


# Groups bound to cluster-admin in a kubeadm 1.31 cluster: system:masters (built in)
# and kubeadm:cluster-admins (the ClusterRoleBinding kubeadm init creates since 1.29).
CLUSTER_ADMIN_GROUPS = {"system:masters", "kubeadm:cluster-admins"}


def authorize(user: str, groups: list[str], verb: str, resource: str, name: str) -> None:
    """RBAC's answer for a node-scoped change: only the cluster admins may (the Node
    authorizer lets a kubelet patch its own Node's status, never drain or delete it)."""
    if CLUSTER_ADMIN_GROUPS & set(groups):
        return
    fail(f'Error from server (Forbidden): {resource} "{name}" is forbidden: User "{user}" cannot {verb} '
         f'resource "{resource}" in API group "" at the cluster scope')


def kubectl_pods(verb: str, words: list[str], options: dict, flags: set, namespace: str,
                 command: list[str]) -> bool:
    """The pod and claim verbs; False when the call is not one of them."""
    import yaml
    kind = words[1] if len(words) > 1 else ""
    if verb == "apply":
        source = options.get("-f") or options.get("--filename")
        if source != "-":
            fail("lab kubectl: only `apply -f -` is emulated")
        pod_apply([d for d in yaml.safe_load_all(sys.stdin.read()) if d])
    elif verb == "exec":
        pod_exec(namespace, words[1], command)
    elif verb == "wait" and kind.startswith("pod/"):
        condition = options.get("--for", "")
        if condition != "condition=Ready":
            fail(f"lab kubectl: wait --for={condition} is not emulated for pods")
        pod_wait(namespace, kind[len("pod/"):], parse_duration(options.get("--timeout", "30s")))
    elif verb == "delete" and kind in ("pod", "pods"):
        with cluster_state() as state:
            for name in words[2:]:
                if state.get("pods", {}).pop(f"{namespace}/{name}", None) is None:
                    if "--ignore-not-found" in flags:
                        continue
                    fail(f'Error from server (NotFound): pods "{name}" not found')
                print(f'pod "{name}" deleted')
    elif verb == "get" and kind in ("pod", "pods") and namespace == "kube-system" \
            and (options.get("-l") or options.get("--selector")) == "component=kube-apiserver":
        api_server_pods(options.get("-o") or options.get("--output") or "", "--no-headers" in flags)
    elif verb == "get" and kind in ("pvc", "persistentvolumeclaim", "persistentvolumeclaims"):
        with cluster_state() as state:
            claims = state.get("claims", {})
            for name in words[2:]:
                if f"{namespace}/{name}" not in claims:
                    fail(f'Error from server (NotFound): persistentvolumeclaims "{name}" not found')
            print("NAME STATUS")
            for name in words[2:]:
                bound = "path" in claims[f"{namespace}/{name}"]
                print(f"{name} {'Bound' if bound else 'Pending'}")
    else:
        return False
    return True


API_SERVER_POD_FIELDS = {".spec.nodeName": lambda name, node: name,
                         ".spec.containers[0].image":
                             lambda name, node: f"registry.k8s.io/kube-apiserver:{node['api_server']}"}


def api_server_pods(output: str, no_headers: bool) -> None:
    """The kube-apiserver mirror pods (labels component=kube-apiserver, tier=control-plane,
    as kubeadm's static pods carry), one per control plane, with custom-columns of
    API_SERVER_POD_FIELDS."""
    if not output.startswith("custom-columns="):
        fail(f"lab kubectl: output {output!r} is not emulated for the kube-apiserver pods")
    columns = [c.split(":", 1) for c in output[len("custom-columns="):].split(",")]
    for _, path in columns:
        if path not in API_SERVER_POD_FIELDS:
            fail(f"lab kubectl: custom-columns path {path!r} is not emulated for pods")
    with cluster_state() as state:
        nodes = {n: v for n, v in sorted(state.get("nodes", {}).items()) if v.get("api_server")}
    if not no_headers:
        print("   ".join(h for h, _ in columns))
    for name, node in nodes.items():
        print("   ".join(API_SERVER_POD_FIELDS[path](name, node) for _, path in columns))


# kubectl's flags (v1.31 `kubectl options` and each command's --help) for the commands
# the lab models: (taking a value, bools).
KUBECTL_GLOBAL = ({"--kubeconfig", "-n", "--namespace", "--context", "--cluster", "--user", "-s", "--server",
                   "--request-timeout", "-v", "--v", "--token", "--as", "--as-group", "--cache-dir",
                   "--certificate-authority", "--client-certificate", "--client-key", "--tls-server-name"},
                  {"--insecure-skip-tls-verify", "--match-server-version", "--warnings-as-errors"})
KUBECTL_COMMANDS = {
    "get": ({"-o", "--output", "-l", "--selector", "--field-selector", "--chunk-size", "--sort-by",
             "--template", "-L", "--label-columns"},
            {"--no-headers", "--ignore-not-found", "-A", "--all-namespaces", "-w", "--watch", "--show-labels",
             "--show-kind", "--raw"}),
    "wait": ({"--for", "--timeout", "-l", "--selector", "-f", "--filename", "--field-selector", "-o", "--output"},
             {"--all", "-A", "--all-namespaces", "--local"}),
    "drain": ({"--timeout", "--grace-period", "--pod-selector", "-l", "--selector", "--chunk-size", "--dry-run",
               "--skip-wait-for-delete-timeout"},
              {"--ignore-daemonsets", "--delete-emptydir-data", "--delete-local-data", "--force",
               "--disable-eviction"}),
    "cordon": ({"-l", "--selector", "--dry-run"}, set()),
    "uncordon": ({"-l", "--selector", "--dry-run"}, set()),
    "delete": ({"--grace-period", "-f", "--filename", "-l", "--selector", "--timeout", "--cascade",
                "--field-selector", "-o", "--output", "--dry-run"},
               {"--ignore-not-found", "--wait", "--force", "--now", "--all", "-A", "--all-namespaces"}),
    "apply": ({"-f", "--filename", "-o", "--output", "--dry-run", "--field-manager", "-l", "--selector"},
              {"--server-side", "--force-conflicts", "--prune", "--force", "--wait"}),
    "exec": ({"-c", "--container", "--pod-running-timeout"}, {"-i", "--stdin", "-t", "--tty", "-q", "--quiet"}),
    "describe": ({"-l", "--selector", "-f", "--filename"}, {"-A", "--all-namespaces", "--show-events"}),
    "config view": ({"-o", "--output", "--template"}, {"--minify", "--raw", "--flatten", "--merge"}),
}


def kubectl(args: list[str]) -> None:
    import yaml
    require_installed("kubectl", "kubectl")
    # What follows `--` is the command of `kubectl exec`, never kubectl's own arguments.
    command: list[str] = []
    if "--" in args:
        args, command = args[:args.index("--")], args[args.index("--") + 1:]
    name = command_path(args, KUBECTL_COMMANDS, KUBECTL_GLOBAL[0])
    values, bools = KUBECTL_COMMANDS.get(name, (set(), set()))

    def refuse(message: str) -> None:
        # kubectl's flag errors are usage errors (cmdutil.UsageErrorf): exit 1.
        fail(f"error: {message}\nSee 'kubectl {name or ''} --help' for usage.".replace("  ", " "))
    options, flags, words = parse_flags(args, values | KUBECTL_GLOBAL[0], bools | KUBECTL_GLOBAL[1], refuse)
    config_path = options.get("--kubeconfig") or os.environ.get("KUBECONFIG") \
        or os.path.expanduser("~/.kube/config")
    output = options.get("-o") or options.get("--output", "")
    if words[:2] == ["config", "view"]:
        config = yaml.safe_load(Path(config_path).read_text()) if Path(config_path).exists() else {}
        if output.startswith("jsonpath="):
            print(jsonpath(config, output[len("jsonpath="):]), end="")
        else:
            print(yaml.safe_dump(config), end="")
        return
    if not Path(config_path).exists():
        fail("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
    admin_cluster(config_path)
    namespace = options.get("-n") or options.get("--namespace") or "default"
    if words[:1] == ["get"] and kubectl_from_etcd(words[1:], output, flags):
        return
    if kubectl_pods(words[0] if words else "", words, options, flags, namespace, command):
        return
    with cluster_state() as state:
        nodes = state.setdefault("nodes", {})
        verb = words[0] if words else ""
        target = words[1:] if verb != "wait" else words[1:]
        if verb == "get" and "--raw" in flags:
            raw_get(state, target)
            return
        if verb == "get" and target[:1] in (["node"], ["nodes"], ["no"]):
            names = target[1:] or sorted(nodes)
            for name in names:
                if name not in nodes:
                    fail(f'Error from server (NotFound): nodes "{name}" not found')
            selector = options.get("-l") or options.get("--selector")
            if selector is not None:
                # The one label selector the scripts use: kubeadm's control-plane role label.
                if selector != "node-role.kubernetes.io/control-plane":
                    fail(f"lab kubectl: selector {selector!r} is not emulated")
                names = [n for n in names if nodes[n]["role"] == "control-plane"]
            if output == "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}":
                print("".join(f"{n}\n" for n in names), end="")
                return
            if output.startswith("jsonpath="):
                fail(f"lab kubectl: output {output!r} is not emulated for nodes")
            if output.startswith("custom-columns="):
                custom_columns(state, names, output[len("custom-columns="):], "--no-headers" in flags)
                return
            if "--no-headers" not in flags:
                print("NAME STATUS ROLES INTERNAL-IP")
            for name in names:
                status = "Ready" if node_ready(state, name) else "NotReady"
                if nodes[name].get("cordoned"):
                    status += ",SchedulingDisabled"
                print(f"{name} {status} {nodes[name]['role']} {nodes[name]['address']}")
            return
        if verb in ("drain", "cordon", "uncordon") or (verb == "delete" and target[:1] in (["node"], ["nodes"])):
            user, groups = identity(config_path, state["ca_pem"])
            api_verb = {"drain": "patch", "cordon": "patch", "uncordon": "patch"}.get(verb, "delete")
            names = target[1:] if verb == "delete" else target[:1]
            for name in names:
                authorize(user, groups, api_verb, "nodes", name)
        if verb in ("drain", "cordon", "uncordon"):
            if not target:
                fail(f"error: USAGE: {verb} NODE [flags]\nSee 'kubectl {verb} -h' for help and examples")
            name = target[0]
            if name not in nodes:
                fail(f'Error from server (NotFound): nodes "{name}" not found')
            cordoned = verb != "uncordon"
            done = {"drain": "cordoned", "cordon": "cordoned", "uncordon": "uncordoned"}[verb]
            print(f"node/{name} already {done}" if bool(nodes[name].get("cordoned")) == cordoned
                  else f"node/{name} {done}")
            nodes[name]["cordoned"] = cordoned
            if verb == "drain":
                drain(state, name, flags)
            return
        if verb == "delete" and target[:1] in (["node"], ["nodes"]):
            for name in target[1:]:
                if name not in nodes:
                    if "--ignore-not-found" in flags:
                        continue
                    fail(f'Error from server (NotFound): nodes "{name}" not found')
                del nodes[name]
                print(f'node "{name}" deleted')
            return
        if verb != "wait":
            fail(f"lab kubectl: unsupported command {' '.join(words)}")
    # Like the real tool: every node named must exist (else NotFound at once); the
    # call returns when all of them are Ready, at once for those that already are,
    # and a timeout names each node still waited for.
    condition = options.get("--for", "")
    if condition != "condition=Ready":
        fail(f"lab kubectl: wait is only emulated for --for=condition=Ready, not {condition!r}")
    names = []
    for target in words[1:]:
        kind, _, name = target.partition("/")
        if kind not in ("node", "nodes", "no") or not name:
            fail(f"lab kubectl: wait is only emulated for node/NAME, not {target!r}")
        names.append(name)
    if not names:
        fail("error: resource(s) were provided, but no name was specified")
    deadline = time.time() + parse_duration(options.get("--timeout", "30s"))
    if ready_delay():
        record_planted("kubectl-wait", ready_delay())
    with cluster_state() as state:
        for name in names:
            if name not in state.get("nodes", {}):
                fail(f'Error from server (NotFound): nodes "{name}" not found')
    waiting = list(names)
    while True:
        with cluster_state() as state:
            times = {name: ready_at(state, name) for name in waiting}
        now = time.time()
        for name in [n for n in waiting if times[n] is not None and times[n] <= now]:
            print(f"node/{name} condition met")
            waiting.remove(name)
        if not waiting:
            return
        if now >= deadline:
            fail("\n".join(f"error: timed out waiting for the condition on nodes/{n}" for n in waiting))
        known = [t for t in times.values() if t is not None]
        # Sleep until the next node is due (or a short poll while the CNI is not up yet).
        time.sleep(max(0.01, min([deadline, *known]) - now) if known else 0.2)


def kubectl_from_etcd(words: list[str], output: str, flags: set) -> bool:
    """What the lab's API server answers from the real etcd: `get --raw /readyz`
    (ready while etcd answers and, on the control plane, the kube-apiserver
    manifest is in place) and `get namespace NAME` (the Namespace stored in etcd).
    False for anything else."""
    import socket
    import etcd_member
    if "--raw" in flags:
        if words not in (["/readyz"], ["/livez"], ["/healthz"], ["/readyz/etcd"]):
            return False  # raw_get answers the others
        # The kubelet's own pass over the static pod manifests (every 20 s for the
        # real one): a manifest put back, as by a restart, runs its pod again.
        etcd_member.sync()
        with cluster_state() as state:
            here = state.get("control_plane_host") == socket.gethostname()
        if (here and not Path("/etc/kubernetes/manifests/kube-apiserver.yaml").exists()) \
                or not etcd_member.api_healthy():
            fail(f"The connection to the server {state.get('endpoint', 'localhost:8080')} was refused "
                 "- did you specify the right host or port?")
        print("ok")
        return True
    if words[:1] not in (["namespace"], ["namespaces"], ["ns"]) or len(words) != 2:
        return False
    stored = etcd_member.api_get(f"/registry/namespaces/{words[1]}")
    if stored is None:
        fail(f'Error from server (NotFound): namespaces "{words[1]}" not found')
    if output.startswith("jsonpath="):
        print(jsonpath(stored, output[len("jsonpath="):]), end="")
    elif output == "json":
        print(json.dumps(stored, indent=4))
    else:
        print(f"NAME STATUS\n{words[1]} Active")
    return True


NODE_FIELDS = {".metadata.name": lambda name, node, ready: name,
               ".status.nodeInfo.kubeletVersion": lambda name, node, ready: node.get("kubelet_version", "<none>"),
               '.status.conditions[?(@.type=="Ready")].status': lambda name, node, ready: str(ready),
               ".spec.unschedulable": lambda name, node, ready: "true" if node.get("cordoned") else "<none>"}


def custom_columns(state: dict, names: list[str], spec: str, no_headers: bool) -> None:
    columns = [c.split(":", 1) for c in spec.split(",")]
    for _, path in columns:
        if path not in NODE_FIELDS:
            fail(f"lab kubectl: custom-columns path {path!r} is not emulated")
    rows = [[h for h, _ in columns]] if not no_headers else []
    for name in names:
        node = state["nodes"][name]
        ready = node_ready(state, name)
        rows.append([NODE_FIELDS[path](name, node, ready) for _, path in columns])
    for row in rows:
        print("   ".join(row))


def raw_get(state: dict, target: list[str]) -> None:
    """kubectl get --raw: the API server's health endpoints, and the deprecated-API
    metric (planted in the cluster record as `deprecated_apis`: label dicts)."""
    path = target[0] if target else ""
    if path in ("/readyz", "/livez", "/healthz", "/readyz/etcd"):
        print("ok" if state.get("endpoint") else "")
        return
    if path == "/metrics":
        print("# TYPE apiserver_requested_deprecated_apis gauge")
        for labels in state.get("deprecated_apis", []):
            text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            print(f"apiserver_requested_deprecated_apis{{{text}}} 1")
        return
    fail(f'Error from server (NotFound): the server could not find the requested resource ({path})')


# --- runc -----------------------------------------------------------------------------

def runc(args: list[str]) -> None:
    """Answers --version as the runc of the installed containerd.io build does."""
    require_installed("runc", "containerd.io")
    if args[:1] not in (["--version"], ["-v"]):
        fail(f"lab runc: only --version is emulated, not {' '.join(args)}")
    version = RUNC_OF_CONTAINERD_IO[installed_version("containerd.io")]
    print(f"runc version {version}\ncommit: v{version}-0-g0000000\nspec: 1.2.1\n"
          "go: go1.24.9\nlibseccomp: 2.5.6")


# --- apt-cache ------------------------------------------------------------------------

def apt_cache(args: list[str]) -> None:
    """`apt-cache show NAME[=VERSION]...` from the catalogue apt-get installs from."""
    if args[:1] != ["show"] or len(args) < 2:
        fail(f"lab apt-cache: only `show NAME[=VERSION]` is emulated, not: {' '.join(args)}", 100)
    catalogue = available()
    found = []
    for spec in args[1:]:
        name, _, version = spec.partition("=")
        versions = catalogue.get(name, [])
        if version:
            if version not in versions:
                fail(f"E: Version '{version}' for '{name}' was not found", 100)
            versions = [version]
        if not versions:
            fail(f"N: Unable to locate package {name}\nE: No packages found", 100)
        found += [f"Package: {name}\nVersion: {v}\n" for v in versions]
    print("\n".join(found))


# --- containerd's configuration (TOML) ------------------------------------------------

def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def toml_dump(data: dict) -> str:
    """TOML as go-toml writes containerd's config: scalars first, then each table
    under its full dotted name, indented by depth."""
    lines: list[str] = []

    def table(node: dict, path: list[str]) -> None:
        indent = "  " * max(len(path) - 1, 0)
        scalars = [(k, v) for k, v in node.items() if not isinstance(v, dict)]
        if path:
            lines.append("")
            lines.append(f"{indent}[{'.'.join(_toml_key(p) for p in path)}]")
        for key, value in scalars:
            lines.append(f"{indent}  {_toml_key(key)} = {_toml_value(value)}" if path
                         else f"{_toml_key(key)} = {_toml_value(value)}")
        for key, value in node.items():
            if isinstance(value, dict):
                table(value, path + [key])
    table(data, [])
    return "\n".join(lines).lstrip("\n") + "\n"


def _deep_merge(into: dict, extra: dict) -> dict:
    """containerd 1.7's merge of an imported file (mergo, override, slices appended
    without duplicates): tables merge key by key, a value replaces a value."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = into[key] + [v for v in value if v not in into[key]]
        else:
            into[key] = value
    return into


def containerd_effective_config(path: str = "/etc/containerd/config.toml") -> dict:
    """config.toml with its `imports` merged in, in order (globs sorted), as containerd loads it."""
    import glob
    import tomllib
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        fail(f"containerd: failed to load TOML: {path}: {error}")
    for pattern in config.get("imports") or []:
        matches = sorted(glob.glob(pattern)) if "*" in pattern else [pattern]
        for imported in matches:
            try:
                _deep_merge(config, {k: v for k, v in tomllib.loads(Path(imported).read_text()).items()
                                     if k not in ("version", "imports")})
            except FileNotFoundError:
                fail(f"containerd: failed to load TOML from {imported}: open {imported}: no such file or directory")
            except tomllib.TOMLDecodeError as error:
                fail(f"containerd: failed to load TOML from {imported}: {error}")
    return config


def containerd(args: list[str]) -> None:
    """`containerd config dump`: the merged configuration, read from the files (no
    daemon is needed, as with the real command)."""
    if args[:2] != ["config", "dump"]:
        fail(f"lab containerd: unsupported arguments: {' '.join(args)}")
    print(toml_dump(containerd_effective_config()), end="")


# --- nvidia-ctk (nvidia-container-toolkit-base) ---------------------------------------

NVIDIA_DROP_IN = "/etc/containerd/conf.d/99-nvidia.toml"
CTK_LOG = 'time="{time}" level={level} msg="{msg}"'


def _ctk_log(message: str, level: str = "info") -> None:
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(CTK_LOG.format(time=now, level=level, msg=message.replace('"', '\\"')), file=sys.stderr)


def nvidia_ctk(args: list[str]) -> None:
    """nvidia-ctk 1.x `runtime configure --runtime=containerd` as it edits a containerd
    config of version 2 (pkg/config/engine/containerd): the `nvidia` runtime, with the
    options of the runtime it copies (the default runtime, else runc) and
    options.BinaryName, written to a drop-in (/etc/containerd/conf.d/99-nvidia.toml),
    and `imports` of that directory added to config.toml. The real tool saves
    config.toml again with go-toml's formatting on every run (its `flush`), even
    when nothing changed; this one edits only the `imports` line, when missing."""
    package = installed_version("nvidia-container-toolkit-base")
    if args[:1] in (["--version"], ["-v"]):
        print(f"NVIDIA Container Toolkit CLI version {package.split('-')[0]}\ncommit: lab")
        return
    if args[:2] != ["runtime", "configure"]:
        fail(f"lab nvidia-ctk: only `runtime configure` and --version are emulated, not: {' '.join(args)}")
    options: dict[str, str] = {"runtime": "docker", "config": "", "drop-in-config": NVIDIA_DROP_IN,
                               "nvidia-runtime-name": "nvidia",
                               "nvidia-runtime-path": "/usr/bin/nvidia-container-runtime"}
    set_default = False
    rest = args[2:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        name, eq, value = arg.lstrip("-").partition("=")
        i += 1
        if name == "set-as-default":
            set_default = value != "false"
            continue
        if name not in options or not arg.startswith("--"):
            fail(f"Incorrect Usage: flag provided but not defined: -{name}")
        if not eq:
            value, i = (rest[i] if i < len(rest) else ""), i + 1
        options[name] = value
    if options["runtime"] != "containerd":
        fail(f"lab nvidia-ctk: only --runtime=containerd is emulated, not {options['runtime']!r}")
    config_path = options["config"] or "/etc/containerd/config.toml"
    import tomllib
    try:
        top_text = Path(config_path).read_text()
    except FileNotFoundError:
        top_text = ""
    try:
        top = tomllib.loads(top_text)
        effective = containerd_effective_config(config_path) if top_text else {}
    except tomllib.TOMLDecodeError as error:
        fail(f'unable to load config for runtime containerd: failed to load config: {error}')
    version = top.get("version", 1) if top else 2
    _ctk_log(f"Using config version {version}")
    if version == 1:
        fail("lab nvidia-ctk: a version 1 containerd config (no drop-in files) is not emulated")
    plugin = "io.containerd.grpc.v1.cri" if version == 2 else "io.containerd.cri.v1.runtime"
    _ctk_log(f'Using CRI runtime plugin name "{plugin}"')
    cri = ((effective.get("plugins") or {}).get(plugin) or {}).get("containerd") or {}
    runtimes = cri.get("runtimes") or {}
    name = options["nvidia-runtime-name"]
    runtime = None
    for low_level in [cri.get("default_runtime_name"), "runc", "crun"]:
        if low_level and low_level != name and low_level in runtimes:
            runtime = json.loads(json.dumps(runtimes[low_level]))  # a deep copy
            break
    if runtime is None:
        _ctk_log("could not infer options from runtimes [runc crun]; using defaults", "warning")
        runtime = {"runtime_type": "io.containerd.runc.v2", "runtime_root": "", "runtime_engine": "",
                   "privileged_without_host_devices": False}
    runtime.setdefault("options", {})["BinaryName"] = options["nvidia-runtime-path"]
    section: dict = {"runtimes": {name: runtime}}
    if set_default:
        section["default_runtime_name"] = name
    drop_in = {"version": version, "plugins": {plugin: {"containerd": section}}}
    target = Path(options["drop-in-config"])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(toml_dump(drop_in))
    except PermissionError:
        fail(f"unable to flush config: unable to open {target} for writing: open {target}: permission denied")
    _ctk_log(f"Wrote updated config to {target}")
    wanted = f"{target.parent}/*.toml"
    imports = list(top.get("imports") or [])
    if wanted not in imports:
        imports.append(wanted)
        line = f"imports = {_toml_value(imports)}"
        lines = top_text.splitlines()
        first_table = next((n for n, l in enumerate(lines) if l.lstrip().startswith("[")), len(lines))
        at = next((n for n, l in enumerate(lines[:first_table]) if re.match(r"\s*imports\s*=", l)), None)
        if at is None:
            lines = ([] if top else [f"version = {version}"]) + [line] + lines
        else:
            lines[at] = line
        Path(config_path).write_text("\n".join(lines) + "\n")
    _ctk_log("It is recommended that containerd daemon be restarted.")


def crictl_ps(args: list[str]) -> None:
    """`crictl ps [-q] [--name REGEX]`: the containers of the static pods the lab
    runs for real (etcd), after the kubelet's pass over the manifests."""
    import etcd_member
    options, flags, _ = parse_flags(args, {"--name", "--state", "-o", "--output"},
                                    {"-q", "--quiet", "-a", "--all"},
                                    lambda m: fail(f"crictl: flag provided but not defined: {m.rsplit(' ', 1)[-1]}"))
    etcd_member.sync()
    running = {"etcd": etcd_member.pid()}
    pattern = re.compile(options.get("--name", ""))
    quiet = "-q" in flags or "--quiet" in flags
    if not quiet:
        print("CONTAINER IMAGE CREATED STATE NAME ATTEMPT POD ID POD")
    for name, number in running.items():
        if number and pattern.search(name):
            print(f"{number:013x}" if quiet else f"{number:013x} etcd now Running {name} 0 - {name}")


def main() -> None:
    tool, args = sys.argv[1], sys.argv[2:]
    if tool == "etcd-member":
        import etcd_member
        etcd_member.main(args)
        return
    if tool == "certs-plant":  # the harness: a certificate with only args[1] left
        import certs
        certs.plant(args[0], args[1])
        return
    {"apt-get": apt_get, "apt-mark": apt_mark, "kubeadm": kubeadm, "kubectl": kubectl,
     "kubelet-restart": lambda _: kubelet_restart(),
     "runc": runc, "apt-cache": apt_cache, "containerd": containerd, "nvidia-ctk": nvidia_ctk,
     "crictl-ps": crictl_ps, "vrrp": vrrp}[tool](args)


if __name__ == "__main__":
    main()
