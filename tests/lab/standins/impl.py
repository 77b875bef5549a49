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
DEPENDS = {"kubeadm": ["kubelet", "kubectl", "cri-tools", "kubernetes-cni"],
           "kubelet": ["kubernetes-cni"]}
UNITS = {"containerd.io": ["containerd"], "kubelet": ["kubelet"]}
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
    for repo in read_table(STATE / "apt" / "lists"):
        if repo.startswith("k8s:"):
            major, minor = repo[4:].split(".")
            extra = kubernetes_repo(major, minor)
        elif repo == "docker:jammy":
            extra = DOCKER_JAMMY
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


def apt_update(lock_timeout: float) -> None:
    fetched = {}
    with lock(LISTS_LOCK, 0):
        for number, (file, url, suite, components, options) in enumerate(sources(), start=1):
            keyring = options.get("signed-by")
            if not keyring or not Path(keyring).is_file() or Path(keyring).stat().st_size == 0:
                fail(f"E: The repository '{url} {suite} Release' is not signed.", 100)
            k8s = K8S_REPO.match(url)
            if k8s and suite == "/":
                fetched[f"k8s:{k8s.group(1)}.{k8s.group(2)}"] = file
            elif url.rstrip("/") == "https://download.docker.com/linux/ubuntu" and suite == "jammy" \
                    and "stable" in components:
                fetched["docker:jammy"] = file
            else:
                fail(f"E: The repository '{url} {suite} Release' does not have a Release file.", 100)
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
        for dependency in DEPENDS.get(name, []):
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
            payload = PAYLOAD / name
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
        write_table(STATE / "dpkg" / "installed", installed)
        (STATE / "units").write_text("".join(f"{u}\n" for u in sorted(units)))


def apt_get(args: list[str]) -> None:
    flags: set[str] = set()
    options: dict[str, str] = {}
    words: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-o":
            key, _, value = args[i + 1].partition("=")
            options[key.lower()] = value
            i += 2
            continue
        if arg.startswith("-"):
            flags.add(arg)
        else:
            words.append(arg)
        i += 1
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


def kubeconfig(server: str, ca_pem: str, user: str) -> str:
    import base64
    import secrets
    import yaml
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kubernetes", "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}}],
        "contexts": [{"name": f"{user}@kubernetes", "context": {"cluster": "kubernetes", "user": user}}],
        "current-context": f"{user}@kubernetes",
        "users": [{"name": user, "user": {
            "client-certificate-data": base64.b64encode(secrets.token_bytes(48)).decode(),
            "client-key-data": base64.b64encode(secrets.token_bytes(48)).decode()}}],
    }, sort_keys=False)


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


def preflight(kind: str) -> None:
    errors = []
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


def kubeadm_init(config_path: str) -> None:
    import hashlib
    import socket
    import yaml
    documents = load_documents(config_path)
    init = documents.get("InitConfiguration") or {}
    cluster = documents.get("ClusterConfiguration") or {}
    kubelet = documents.get("KubeletConfiguration") or {}
    name, kubelet_args = node_registration(init)
    own = installed_version("kubeadm").split("-")[0]
    wanted = str(cluster.get("kubernetesVersion", f"v{own}")).lstrip("v")
    if wanted.split(".")[:2] != own.split(".")[:2]:
        fail(f"this version of kubeadm (v{own}) cannot deploy Kubernetes v{wanted}")
    preflight("init")
    advertise = (init.get("localAPIEndpoint") or {}).get("advertiseAddress", "")
    endpoint = cluster.get("controlPlaneEndpoint") or f"{advertise}:6443"
    if ":" not in endpoint:
        endpoint += ":6443"
    tokens = init.get("bootstrapTokens") or [{}]
    with cluster_state() as state:
        if state.get("endpoint"):
            fail(f"lab: this lab's cluster is already served by {state['control_plane_host']}")
        ca_pem, ca_key_pem = new_ca()
        token = new_token()
        ttl = parse_duration(str(tokens[0].get("ttl", "24h")))
        state.update({
            "endpoint": endpoint,
            "control_plane_host": socket.gethostname(),
            "ca_hash": hashlib.sha256(ca_pem.encode()).hexdigest(),
            "ca_pem": ca_pem,
            "kubernetes_version": f"v{wanted}",
            "pod_subnet": (cluster.get("networking") or {}).get("podSubnet", ""),
            "service_subnet": (cluster.get("networking") or {}).get("serviceSubnet", ""),
            "tokens": [{"id": token.split(".")[0], "secret": token.split(".")[1],
                        "expires": time.time() + ttl if ttl else 0,
                        "description": tokens[0].get("description", "")}],
            "nodes": {name: {"address": kubelet_args.get("node-ip", advertise),
                             "role": "control-plane", "host": socket.gethostname(),
                             "registered": time.time()}},
        })
        ca_hash = state["ca_hash"]
    write("/etc/kubernetes/pki/ca.crt", ca_pem, 0o644)
    write("/etc/kubernetes/pki/ca.key", ca_key_pem)
    for conf, user in (("admin.conf", "kubernetes-admin"), ("super-admin.conf", "kubernetes-super-admin"),
                       ("kubelet.conf", f"system:node:{name}"),
                       ("controller-manager.conf", "system:kube-controller-manager"),
                       ("scheduler.conf", "system:kube-scheduler")):
        write(f"/etc/kubernetes/{conf}", kubeconfig(f"https://{endpoint}", ca_pem, user))
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
    for component in ("kube-controller-manager", "kube-scheduler", "etcd"):
        write(f"/etc/kubernetes/manifests/{component}.yaml",
              yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": component}}))
    kubelet_files(name, kubelet_args, kubelet.get("cgroupDriver", "cgroupfs"))
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
        if base64.b64decode(cluster["certificate-authority-data"]).decode() != state["ca_pem"]:
            fail("Unable to connect to the server: tls: failed to verify certificate: "
                 "x509: certificate signed by unknown authority")


def split_args(args: list[str], with_value: set[str]) -> tuple[dict[str, str], set[str], list[str]]:
    """(options, flags, words) as Go CLIs read them: `--opt value` for the options
    in `with_value`, `--opt=value` for any option, other dashes are flags."""
    options: dict[str, str] = {}
    flags: set[str] = set()
    words: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in with_value:
            options[arg] = args[i + 1]
            i += 2
            continue
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            options[key] = value
        elif arg.startswith("-"):
            flags.add(arg)
        else:
            words.append(arg)
        i += 1
    return options, flags, words


def kubeadm_token(args: list[str]) -> None:
    options, flags, words = split_args(args, {"--ttl", "--description", "--kubeconfig"})
    options = {"--ttl": "24h", "--description": "", **options}
    admin_cluster(options.get("--kubeconfig", "/etc/kubernetes/admin.conf"))
    if words[:1] == ["list"]:
        with cluster_state() as state:
            for t in state["tokens"]:
                print(f"{t['id']}.{t['secret']}   {t['description']}")
        return
    if words[:1] != ["create"]:
        fail(f"lab kubeadm: unsupported token command {words}")
    ttl = parse_duration(options["--ttl"])
    token = new_token()
    with cluster_state() as state:
        state["tokens"].append({"id": token.split(".")[0], "secret": token.split(".")[1],
                                "expires": time.time() + ttl if ttl else 0,
                                "description": options["--description"]})
        endpoint, ca_hash = state["endpoint"], state["ca_hash"]
    if "--print-join-command" in flags:
        # The real command ends its line with a space, too.
        print(f"kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash sha256:{ca_hash} ")
    else:
        print(token)


def kubeadm_join(config_path: str) -> None:
    import socket
    documents = load_documents(config_path)
    join = documents.get("JoinConfiguration")
    if join is None:
        fail(f"no JoinConfiguration found in {config_path}")
    name, kubelet_args = node_registration(join)
    preflight("join")
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
        if name in state["nodes"]:
            fail(f"error execution phase kubelet-start: a Node with name \"{name}\" and status "
                 "\"Ready\" already exists in the cluster. You must delete the existing Node or "
                 "change the name of this new joining node")
        state["nodes"][name] = {"address": kubelet_args.get("node-ip", ""), "role": "worker",
                                "token_id": token_id, "host": socket.gethostname(),
                                "registered": time.time()}
        ca_pem = state["ca_pem"]
    write("/etc/kubernetes/pki/ca.crt", ca_pem, 0o644)
    write("/etc/kubernetes/kubelet.conf", kubeconfig(f"https://{endpoint}", ca_pem, f"system:node:{name}"))
    kubelet_files(name, kubelet_args, "systemd")
    print("[preflight] Running pre-flight checks\n"
          "[kubelet-start] Starting the kubelet\n\n"
          "This node has joined the cluster:\n"
          "* Certificate signing request was sent to apiserver and a response was received.\n"
          "* The Kubelet was informed of the new secure connection details.")


def kubeadm_reset(args: list[str]) -> None:
    import shutil
    import socket
    if "-f" not in args and "--force" not in args:
        fail("[reset] Are you sure you want to proceed? [y/N]: aborted reset operation")
    if os.geteuid() != 0:
        fail("[ERROR IsPrivilegedUser]: user is not running as root")
    set_service("kubelet", False)
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


def kubeadm_kubeconfig_user(args: list[str]) -> None:
    """`kubeadm kubeconfig user`: a kubeconfig whose client certificate, signed by the
    CA in the config's certificatesDir, has CN --client-name and O each --org."""
    import base64
    import yaml
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    organizations: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):  # --org is a string slice: repeatable, comma-separated
        if args[i] == "--org" or args[i].startswith("--org="):
            value = args[i + 1] if args[i] == "--org" else args[i].split("=", 1)[1]
            organizations += [o for o in value.split(",") if o]
            i += 2 if args[i] == "--org" else 1
            continue
        rest.append(args[i])
        i += 1
    options, _, _ = split_args(rest, {"--config", "--client-name", "--validity-period", "--token"})
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


def kubeadm_images(args: list[str]) -> None:
    version = args[args.index("--kubernetes-version") + 1] if "--kubernetes-version" in args else ""
    if not version:
        fail("lab kubeadm: pass --kubernetes-version")
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


def kubeadm(args: list[str]) -> None:
    require_installed("kubeadm", "kubeadm")
    words = [a for a in args if not a.startswith("-")]
    if not words:
        fail("lab kubeadm: missing command")
    if words[0] == "version":
        print(f"v{installed_version('kubeadm').split('-')[0]}")
    elif words[0] == "init":
        kubeadm_init(args[args.index("--config") + 1])
    elif words[0] == "join":
        if "--config" not in args:
            fail("lab kubeadm: join is only emulated with --config (a JoinConfiguration)")
        kubeadm_join(args[args.index("--config") + 1])
    elif words[0] == "token":
        kubeadm_token(args[1:])
    elif words[0] == "reset":
        kubeadm_reset(args)
    elif words[:3] == ["config", "images", "pull"]:
        kubeadm_images(args)
    elif words[:2] == ["kubeconfig", "user"]:
        kubeadm_kubeconfig_user(args[args.index("user") + 1:])
    else:
        fail(f"lab kubeadm: unsupported command {' '.join(words)}")


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
    if node is None or not cni.exists():
        return None
    return max(cni.stat().st_mtime, node.get("registered", 0.0)) + ready_delay()


def record_planted(step: str, seconds: float) -> None:
    """As common.sh's lab_planted: a planted delay this stand-in serves."""
    with contextlib.suppress(OSError):
        path = Path(os.environ.get("LAB_DELAYS", "/var/log/lab/delays.log"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as log:
            arguments = " ".join(sys.argv[2:]).replace("\t", " ").replace("\n", " ")
            log.write(f"{time.time():.6f}\t{step}\t{seconds:g}\t{arguments}\n")


def node_ready(state: dict, name: str) -> bool:
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
            state["pods"][key] = {"namespace": namespace, "name": meta["name"], "mounts": mounts,
                                  "image": spec["containers"][0].get("image", "")}
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


def kubectl(args: list[str]) -> None:
    import yaml
    require_installed("kubectl", "kubectl")
    # What follows `--` is the command of `kubectl exec`, never kubectl's own arguments.
    command: list[str] = []
    if "--" in args:
        args, command = args[:args.index("--")], args[args.index("--") + 1:]
    options, flags, words = split_args(
        args, {"--kubeconfig", "-o", "--output", "--for", "--timeout", "-n", "--namespace",
               "-f", "--filename"})
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
    if kubectl_pods(words[0] if words else "", words, options, flags, namespace, command):
        return
    with cluster_state() as state:
        nodes = state.setdefault("nodes", {})
        verb = words[0] if words else ""
        target = words[1:] if verb != "wait" else words[1:]
        if verb == "get" and target[:1] in (["node"], ["nodes"], ["no"]):
            names = target[1:] or sorted(nodes)
            for name in names:
                if name not in nodes:
                    fail(f'Error from server (NotFound): nodes "{name}" not found')
            if "--no-headers" not in flags:
                print("NAME STATUS ROLES INTERNAL-IP")
            for name in names:
                status = "Ready" if node_ready(state, name) else "NotReady"
                if nodes[name].get("cordoned"):
                    status += ",SchedulingDisabled"
                print(f"{name} {status} {nodes[name]['role']} {nodes[name]['address']}")
            return
        if verb == "drain" or verb == "cordon":
            name = target[0]
            if name not in nodes:
                fail(f'Error from server (NotFound): nodes "{name}" not found')
            nodes[name]["cordoned"] = True
            print(f"node/{name} cordoned")
            if verb == "drain":
                print(f"node/{name} drained")
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


# --- runc -----------------------------------------------------------------------------

def runc(args: list[str]) -> None:
    """Answers --version as the runc of the installed containerd.io build does."""
    require_installed("runc", "containerd.io")
    if args[:1] not in (["--version"], ["-v"]):
        fail(f"lab runc: only --version is emulated, not {' '.join(args)}")
    version = RUNC_OF_CONTAINERD_IO[installed_version("containerd.io")]
    print(f"runc version {version}\ncommit: v{version}-0-g0000000\nspec: 1.2.1\n"
          "go: go1.24.9\nlibseccomp: 2.5.6")


def main() -> None:
    tool, args = sys.argv[1], sys.argv[2:]
    {"apt-get": apt_get, "apt-mark": apt_mark, "kubeadm": kubeadm, "kubectl": kubectl,
     "runc": runc}[tool](args)


if __name__ == "__main__":
    main()
