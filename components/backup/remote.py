"""What scripts/backup.py and scripts/restore.py run on the control plane.

The command lines are pure functions (tested as such); the flows take an
`Executor`, which scripts/ implements over SSH (components/preflight/ssh.py:
the stack's bastion and pinned host keys) and the tests with a stand-in.
A snapshot holds every Secret of the cluster: local files are created 0600,
and no snapshot byte is ever printed.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Protocol

from components.backup.config import SNAPSHOT_DIR
from components.cluster.node_scripts import render_command

RESTORE_DIR = "/var/lib/kserve-cluster/etcd-restore"
CHUNK = 1 << 20


class Executor(Protocol):
    def run(self, command: str) -> tuple[int, str, str]:
        """Run a command; (exit status, stdout, stderr)."""

    def read(self, command: str, sink: BinaryIO) -> tuple[int, str]:
        """Run a command, its stdout written to sink; (exit status, stderr)."""

    def write(self, command: str, source: BinaryIO) -> tuple[int, str]:
        """Run a command with source as its stdin; (exit status, stderr)."""


class BackupError(Exception):
    pass


def parse_fields(text: str) -> dict[str, str]:
    """key=value lines (what the node scripts print) as a dict."""
    fields = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq and key.strip():
            fields[key.strip()] = value.strip()
    return fields


def snapshot_command() -> str:
    return render_command("etcd-snapshot.sh")


def read_file_command(path: str) -> str:
    if not path.startswith(SNAPSHOT_DIR + "/") or ".." in path:
        raise BackupError(f"refusing to read {path!r}: not a snapshot under {SNAPSHOT_DIR}")
    return f"sudo -n cat -- {shlex.quote(path)}"


def upload_command(name: str) -> str:
    """Write stdin to RESTORE_DIR/<name>, root-only."""
    target = f"{RESTORE_DIR}/{name}"
    inner = (f"umask 077 && install -d -m 0700 {shlex.quote(RESTORE_DIR)} && "
             f"cat > {shlex.quote(target)}")
    return f"sudo -n sh -c {shlex.quote(inner)}"


def restore_command(phase: str, stamp: str, env: Optional[dict[str, str]] = None) -> str:
    """One PHASE of scripts/node/etcd-restore.sh (check, stop, restore, start, wait, abort)."""
    return render_command("etcd-restore.sh", {"PHASE": phase, "STAMP": stamp, **(env or {})})


@dataclass(frozen=True)
class Member:
    """A control plane's etcd member, as its etcd.yaml names it (the check phase)."""
    node: str
    name: str
    peer_url: str
    data_dir: str


def initial_cluster(members: list[Member]) -> str:
    """etcd's --initial-cluster: every member's name=peer URL, in the stack's order."""
    return ",".join(f"{m.name}={m.peer_url}" for m in members)


def cluster_token(stamp: str) -> str:
    """A new --initial-cluster-token per restore: the restored members form a new
    cluster (a new cluster ID) and refuse a member left running on the old data."""
    return f"kserve-restore-{stamp.lower()}"


def restore_arguments(member: Member, members: list[Member], stamp: str,
                      snapshot: str) -> list[str]:
    """`etcdutl snapshot restore` for one member (etcd.io v3.5 op-guide/recovery):
    each member restored from the same snapshot with its own --name and peer URL,
    the whole --initial-cluster and one token."""
    if member not in members:
        raise BackupError(f"{member.name} is not one of the members to restore")
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise BackupError(f"two members share a name: {', '.join(names)}")
    return ["snapshot", "restore", snapshot, "--name", member.name,
            "--initial-cluster", initial_cluster(members),
            "--initial-cluster-token", cluster_token(stamp),
            "--initial-advertise-peer-urls", member.peer_url,
            "--data-dir", f"{member.data_dir}.restore-{stamp}"]


def restore_env(member: Member, members: list[Member], stamp: str, snapshot: str,
                sha256: str) -> dict[str, str]:
    """The restore phase's inputs for one member (the script builds
    restore_arguments' command line from them)."""
    arguments = restore_arguments(member, members, stamp, snapshot)
    value = lambda flag: arguments[arguments.index(flag) + 1]  # noqa: E731
    return {"SNAPSHOT": snapshot, "SNAPSHOT_SHA256": sha256, "NAME": member.name,
            "INITIAL_CLUSTER": value("--initial-cluster"),
            "CLUSTER_TOKEN": value("--initial-cluster-token"), "PEER_URL": member.peer_url}


def safe_name(path: str) -> str:
    name = os.path.basename(path)
    if not name or name.startswith(".") or any(c not in _SAFE for c in name):
        raise BackupError(f"unexpected snapshot name {name!r}")
    return name


_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class _HashingSink:
    def __init__(self, handle: BinaryIO):
        self.handle, self.digest, self.size = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    node_fields: dict


def take_and_fetch(executor: Executor, out_dir: Path) -> Fetched:
    """Take a snapshot now on the node, stream it to out_dir with a .sha256 next
    to it, and check that the bytes that arrived are the ones the node hashed."""
    status, out, err = executor.run(snapshot_command())
    if status != 0:
        raise BackupError(f"the snapshot failed on the node (exit {status}): {err.strip()[-500:]}")
    fields = parse_fields(out)
    remote, want = fields.get("snapshot", ""), fields.get("sha256", "")
    if not remote or len(want) != 64:
        raise BackupError(f"the snapshot script did not report a file and its sha256: {out[-300:]!r}")
    name = safe_name(remote)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / name
    partial = out_dir / f".partial-{name}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            sink = _HashingSink(handle)
            status, err = executor.read(read_file_command(remote), sink)
        if status != 0:
            raise BackupError(f"reading {remote} failed (exit {status}): {err.strip()[-300:]}")
        got = sink.digest.hexdigest()
        if got != want:
            raise BackupError(f"the copy's sha256 {got} differs from the node's {want}: not kept")
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    sums = out_dir / f"{name}.sha256"
    sums.write_text(f"{want}  {name}\n")
    return Fetched(target, want, sink.size, fields)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def restore_stamp(now: Optional[datetime.datetime] = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def _run(executor: Executor, node: str, command: str, what: str) -> dict[str, str]:
    status, out, err = executor.run(command)
    if status != 0:
        raise BackupError(f"{node}: {what} failed (exit {status}):\n{err.strip()[-2000:]}")
    return parse_fields(out)


def restore_cluster(executors: list[tuple[str, Executor]], snapshot: Path,
                    say: Callable[[str], None] = print, stamp: Optional[str] = None) -> dict[str, str]:
    """Restore every control plane's member from `snapshot`, each phase of
    etcd-restore.sh on every node before the next phase anywhere (kubernetes.io
    "Restoring an etcd cluster": stop all API servers, restore all members, start
    them, restart the other components). `executors`: (node name, Executor), the
    first control plane first. Until the data directories are swapped a failure
    puts every node back as it was (`abort`)."""
    if not executors:
        raise BackupError("no control plane to restore")
    sha = file_sha256(snapshot)
    expected = _expected_sha(snapshot)
    if expected and expected != sha:
        raise BackupError(f"{snapshot} does not match {snapshot}.sha256: not restored")
    name = safe_name(str(snapshot))
    remote = f"{RESTORE_DIR}/{name}"
    stamp = stamp or restore_stamp()
    snap_env = {"SNAPSHOT": remote, "SNAPSHOT_SHA256": sha}
    members = []
    for node, executor in executors:
        say(f"{node}: sending {snapshot.name} ({snapshot.stat().st_size} bytes, sha256 {sha}) to {remote}")
        with open(snapshot, "rb") as handle:
            status, err = executor.write(upload_command(name), handle)
        if status != 0:
            raise BackupError(f"{node}: uploading the snapshot failed (exit {status}): {err.strip()[-300:]}")
        fields = _run(executor, node, restore_command("check", stamp, snap_env), "checking the snapshot")
        try:
            members.append(Member(node, fields["name"], fields["peer"], fields["data"]))
        except KeyError as missing:
            raise BackupError(f"{node}: the check did not report the member's {missing}") from None
    plans = {m.node: restore_env(m, members, stamp, remote, sha) for m in members}

    stopped = []
    try:
        for node, executor in executors:
            say(f"{node}: stopping etcd and the control plane (the API server is down until the end)")
            stopped.append((node, executor))
            _run(executor, node, restore_command("stop", stamp), "stopping the control plane")
        for node, executor in executors:
            say(f"{node}: etcdutl snapshot restore as member {plans[node]['NAME']}")
            _run(executor, node, restore_command("restore", stamp, plans[node]), "the restore")
    except BackupError:
        for node, executor in stopped:
            status, _, err = executor.run(restore_command("abort", stamp))
            say(f"{node}: " + ("put back as it was" if status == 0 else
                               f"could not be put back (exit {status}): {err.strip()[-300:]}"))
        raise

    result: dict[str, str] = {"members": initial_cluster(members)}
    for node, executor in executors:
        say(f"{node}: swapping the data directory in and starting the control plane")
        fields = _run(executor, node, restore_command("start", stamp), "starting the member")
        result[f"previous_data_dir.{node}"] = fields.get("previous_data_dir", "")
    for index, (node, executor) in enumerate(executors):
        fields = _run(executor, node, restore_command("wait", stamp, {"WAIT_API": "1" if index == 0 else "0"}),
                      "waiting for etcd" + (" and the API server" if index == 0 else ""))
        say(f"{node}: etcd member healthy")
        result.update({k: v for k, v in fields.items() if k == "kube_system_uid"})
    result["previous_data_dir"] = result[f"previous_data_dir.{executors[0][0]}"]
    return result


def restart_kubelet_command() -> str:
    return "sudo -n systemctl restart kubelet"


def _expected_sha(snapshot: Path) -> Optional[str]:
    sums = snapshot.with_name(snapshot.name + ".sha256")
    if not sums.is_file():
        return None
    return sums.read_text().split()[0]
