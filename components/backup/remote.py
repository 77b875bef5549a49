"""What scripts/backup.py and scripts/restore.py run on the control plane.

The command lines are pure functions (tested as such); the flows take an
`Executor`, which scripts/ implements over SSH (components/preflight/ssh.py:
the stack's bastion and pinned host keys) and the tests with a stand-in.
A snapshot holds every Secret of the cluster: local files are created 0600,
and no snapshot byte is ever printed.
"""
from __future__ import annotations

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


def restore_command(remote_path: str, sha256: str) -> str:
    return render_command("etcd-restore.sh", {"SNAPSHOT": remote_path, "SNAPSHOT_SHA256": sha256})


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


def upload_and_restore(executor: Executor, snapshot: Path,
                       say: Callable[[str], None] = print) -> dict[str, str]:
    """Send the snapshot to the control plane and run etcd-restore.sh there."""
    sha = file_sha256(snapshot)
    expected = _expected_sha(snapshot)
    if expected and expected != sha:
        raise BackupError(f"{snapshot} does not match {snapshot}.sha256: not restored")
    name = safe_name(str(snapshot))
    remote = f"{RESTORE_DIR}/{name}"
    say(f"sending {snapshot.name} ({snapshot.stat().st_size} bytes, sha256 {sha}) to {remote}")
    with open(snapshot, "rb") as handle:
        status, err = executor.write(upload_command(name), handle)
    if status != 0:
        raise BackupError(f"uploading the snapshot failed (exit {status}): {err.strip()[-300:]}")
    say("restoring (the API server is down until it finishes)")
    status, out, err = executor.run(restore_command(remote, sha))
    if status != 0:
        raise BackupError(f"the restore failed (exit {status}):\n{err.strip()[-2000:]}")
    return parse_fields(out)


def _expected_sha(snapshot: Path) -> Optional[str]:
    sums = snapshot.with_name(snapshot.name + ".sha256")
    if not sums.is_file():
        return None
    return sums.read_text().split()[0]
