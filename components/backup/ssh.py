"""The Executor of components/backup/remote.py over one paramiko connection."""
from __future__ import annotations

from contextlib import contextmanager
from typing import BinaryIO, Iterator, Optional

import paramiko

from components.backup.remote import BackupError
from components.preflight.ssh import connect, credentials, describe_error, quiet_paramiko_logs
from components.stack_config import ConfigError, Node, StackConfig

CHUNK = 1 << 20
TIMEOUT = 1800.0  # a restore waits up to 5 minutes for health; a big snapshot takes a while


class SshExecutor:
    def __init__(self, client: paramiko.SSHClient):
        self.client = client

    def _open(self, command: str) -> paramiko.Channel:
        channel = self.client.get_transport().open_session()
        channel.settimeout(TIMEOUT)
        channel.exec_command(command)
        return channel

    def run(self, command: str) -> tuple[int, str, str]:
        channel = self._open(command)
        channel.shutdown_write()
        out, err = channel.makefile("rb").read(), channel.makefile_stderr("rb").read()
        return channel.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace")

    def read(self, command: str, sink: BinaryIO) -> tuple[int, str]:
        channel = self._open(command)
        channel.shutdown_write()
        while True:
            data = channel.recv(CHUNK)
            if not data:
                break
            sink.write(data)
        err = channel.makefile_stderr("rb").read()
        return channel.recv_exit_status(), err.decode(errors="replace")

    def write(self, command: str, source: BinaryIO) -> tuple[int, str]:
        channel = self._open(command)
        for block in iter(lambda: source.read(CHUNK), b""):
            channel.sendall(block)
        channel.shutdown_write()
        err = channel.makefile_stderr("rb").read()
        return channel.recv_exit_status(), err.decode(errors="replace")


@contextmanager
def ssh_executor(config: StackConfig, node: Node, key_file: Optional[str]) -> Iterator[SshExecutor]:
    """An SshExecutor on `node`, connected as scripts/preflight.py connects (bastion,
    pinned host keys); a connection failure is a BackupError said in one line."""
    quiet_paramiko_logs()
    try:
        with connect(node, config.ssh, credentials(config, key_file)) as (client, _):
            yield SshExecutor(client)
    except (BackupError, ConfigError):
        raise
    except Exception as error:  # a connection failure, said in one line
        raise BackupError(describe_error(error)) from error
