"""The Executor of components/backup/remote.py over one paramiko connection."""
from __future__ import annotations

from typing import BinaryIO

import paramiko

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
