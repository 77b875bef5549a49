"""SSH for the preflight CLI and the host key checks (paramiko).

Connections go through the bastion when the stack has one, and check the
node's pinned host key when it has one, exactly as the program's connections do.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import paramiko

from components.stack_config import ConfigError, Node, SshSettings, StackConfig

CONNECT_TIMEOUT = 10.0


class HostKeyMismatch(Exception):
    def __init__(self, where: str, pinned: str, offered: str, node: Optional[str] = None):
        fix = (f"If the VM was recreated on purpose, trust its new key: "
               f"scripts/preflight.py --stack <stack> --trust {node}" if node else
               "If the bastion was recreated on purpose, update ssh.bastion.hostKey.")
        super().__init__(f"host key mismatch for {where}: the stack pins {pinned}, the server "
                         f"offers {offered}. Someone may be intercepting the connection. {fix}")
        self.pinned, self.offered = pinned, offered


def fingerprint(key_line: str) -> str:
    """'ssh-ed25519 AAAA...' -> 'SHA256:...' as ssh-keygen -l prints it."""
    blob = base64.b64decode(key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


@dataclass
class Credentials:
    private_key: Optional[str] = None  # PEM/OpenSSH text
    key_path: Optional[str] = None
    use_agent: bool = False

    def connect_kwargs(self) -> dict:
        kwargs: dict = {"allow_agent": self.use_agent, "look_for_keys": False}
        if self.private_key:
            kwargs["pkey"] = _load_key(self.private_key)
        elif self.key_path:
            kwargs["key_filename"] = os.path.expanduser(self.key_path)
        return kwargs


def credentials(config: StackConfig, key_file: Optional[str]) -> Credentials:
    """The key the tools log in with: --key-file, $SSH_KEY_FILE, ssh.privateKeyPath,
    an SSH agent, or ~/.ssh/id_ed25519, in that order."""
    key_file = key_file or os.environ.get("SSH_KEY_FILE") or config.ssh.private_key_path
    if key_file:
        return Credentials(private_key=Path(os.path.expanduser(key_file)).read_text())
    if os.environ.get("SSH_AUTH_SOCK"):
        return Credentials(use_agent=True)
    default = Path.home() / ".ssh" / "id_ed25519"
    if default.is_file():
        return Credentials(private_key=default.read_text())
    raise ConfigError(["no SSH key: pass --key-file, set SSH_KEY_FILE or ssh.privateKeyPath, "
                       "or start an SSH agent"])


def _load_key(text: str) -> paramiko.PKey:
    import io
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise ValueError("the SSH private key could not be read (ed25519, ECDSA or RSA, unencrypted)")


class HopError(Exception):
    """A connection to one hop (the bastion or the node) failed: says which, keeps why."""

    def __init__(self, target: str, error: Exception):
        super().__init__(f"{target}: {error}")
        self.target, self.error = target, error


def quiet_paramiko_logs() -> None:
    """paramiko logs every failed handshake with its traceback; the CLI says it in one line."""
    logger = logging.getLogger("paramiko")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False


class _Capture(paramiko.MissingHostKeyPolicy):
    """Accept any key but remember it: used when nothing is pinned, and by --trust."""

    def __init__(self) -> None:
        self.key: Optional[paramiko.PKey] = None

    def missing_host_key(self, client, hostname, key):
        self.key = key


def _open(host: str, port: int, user: str, pinned: Optional[str], creds: Credentials,
          sock=None, label: str = "", node: Optional[str] = None) -> tuple[paramiko.SSHClient, str]:
    client = paramiko.SSHClient()
    capture = _Capture()
    client.set_missing_host_key_policy(capture)
    kwargs = creds.connect_kwargs()  # a key that cannot be read is not a connection failure
    try:
        client.connect(host, port=port, username=user, timeout=CONNECT_TIMEOUT,
                       banner_timeout=CONNECT_TIMEOUT, auth_timeout=CONNECT_TIMEOUT, sock=sock,
                       **kwargs)
    except Exception as error:
        client.close()
        raise HopError(_join(host, port), error) from error
    offered = key_line(client.get_transport().get_remote_server_key())
    if pinned and offered.split()[:2] != pinned.split()[:2]:
        client.close()
        raise HostKeyMismatch(label or f"{host}:{port}", fingerprint(pinned), fingerprint(offered), node)
    return client, offered


@contextmanager
def connect(node: Node, ssh: SshSettings, creds: Credentials) -> Iterator[tuple[paramiko.SSHClient, str]]:
    """An authenticated client for `node` (through the bastion if any) and its host key line."""
    jump = None
    try:
        sock = None
        if ssh.bastion is not None:
            jump, _ = _open(ssh.bastion.address, ssh.bastion.port, ssh.bastion.user,
                            ssh.bastion.host_key, creds, label=f"bastion {ssh.bastion.address}")
            try:
                sock = jump.get_transport().open_channel(
                    "direct-tcpip", (node.address, node.ssh_port), ("127.0.0.1", 0))
            except Exception as error:
                raise HopError(_join(node.address, node.ssh_port), error) from error
        client, offered = _open(node.address, node.ssh_port, node.ssh_user, node.host_key, creds,
                                sock=sock, label=f"{node.name} ({node.address})", node=node.name)
        try:
            yield client, offered
        finally:
            client.close()
    finally:
        if jump is not None:
            jump.close()


def run(client: paramiko.SSHClient, command: str, timeout: float = 120.0) -> tuple[int, str, str]:
    stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
    stdin.close()
    out, err = stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
    return stdout.channel.recv_exit_status(), out, err


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# What paramiko says when the peer is not an SSH server (it speaks another
# protocol, or accepts and closes the connection without a word).
_NOT_SSH = ("protocol banner", "Indecipherable protocol version", "Connection reset by peer")


def describe_error(error: Exception) -> str:
    """A connection failure in one line that names where and says what to check."""
    if isinstance(error, HostKeyMismatch):
        return str(error)
    target = "the node"
    if isinstance(error, HopError):
        target, error = error.target, error.error
    if isinstance(error, paramiko.AuthenticationException):
        return (f"SSH login refused by {target}: check ssh.user and that the key is in "
                "~/.ssh/authorized_keys there.")
    if isinstance(error, paramiko.ChannelException):
        return (f"the bastion could not reach {target} ({error}): check the node's address and "
                "port, and that the bastion may reach it.")
    if isinstance(error, (socket.timeout, TimeoutError)):
        return (f"no answer from {target} within {CONNECT_TIMEOUT:g}s: is the VM up, the address "
                "right, and the port open in any firewall?")
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        # paramiko wraps the socket error of every address it tried.
        error = next(iter(error.errors.values()), error)
    code = getattr(error, "errno", None)
    if isinstance(error, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return (f"SSH connection refused by {target}: is sshd running, and is the address and "
                "port right?")
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return (f"no route to {target} from here: is the address right, or is it only "
                "reachable through a jump host (ssh.bastion)?")
    if isinstance(error, (EOFError, ConnectionResetError, ConnectionAbortedError)) or (
            isinstance(error, paramiko.SSHException) and any(s in str(error) for s in _NOT_SSH)):
        return (f"no SSH server answers at {target}: check the address, the port and any "
                "firewall (something there accepted the connection but did not speak SSH).")
    if isinstance(error, paramiko.SSHException):
        return f"SSH to {target} failed ({error}): check that the server there is OpenSSH."
    if isinstance(error, OSError):
        return f"cannot reach {target} over SSH: {error.strerror or error}."
    return f"SSH to {target} failed: {error}"


def fetch_host_key(node: Node, ssh: SshSettings, creds: Credentials) -> str:
    """The node's host key line, read over an authenticated connection (for --trust)."""
    unpinned = Node(node.name, node.address, node.role, node.ssh_user, node.ssh_port, None)
    with connect(unpinned, ssh, creds) as (_, offered):
        return offered
