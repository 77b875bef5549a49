"""CPU time of a group of processes and all they start, read from a cgroup.

The lab's benchmark wants the lab's own CPU (every node's sshd, sudo, bash and
stand-ins) apart from the program's. Session processes are killed with their
node and never reaped by anyone we could ask (so getrusage(RUSAGE_CHILDREN) does
not see them); a cgroup counts every process that ever ran in it. Needs root and
a writable cgroup2 (usage_usec in cpu.stat) or cgroup v1 cpuacct hierarchy.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

# cgroup2 at its usual place (alone, or beside v1 as "unified"), then v1 cpuacct.
_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/cpuacct"))


class CpuGroup:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, name: str) -> Optional["CpuGroup"]:
        """A new cgroup for counting, or None where none can be made here."""
        for root in _ROOTS:
            if not ((root / "cgroup.procs").exists()
                    and ((root / "cpu.stat").exists() or (root / "cpuacct.usage").exists()
                         or (root / "cgroup.controllers").exists())):
                continue
            path = root / f"{name}-{os.getpid()}"
            try:
                path.mkdir()
            except OSError:
                continue
            group = cls(path)
            try:
                group.cpu_seconds()
            except OSError:
                path.rmdir()
                continue
            return group
        return None

    def join(self) -> None:
        """Move the calling process into the group (for subprocess's preexec_fn: the
        child joins before it runs anything, so all it starts is counted)."""
        with open(self.path / "cgroup.procs", "w") as procs:
            procs.write("0")

    def cpu_seconds(self) -> float:
        """CPU seconds (user and system) used by everything that ran in the group."""
        stat = self.path / "cpu.stat"
        if stat.exists():
            for line in stat.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        """Remove the group once its processes are gone (ignored while any remain)."""
        try:
            self.path.rmdir()
        except OSError:
            pass
