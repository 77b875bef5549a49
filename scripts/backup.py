#!/usr/bin/env python3
"""Take an etcd snapshot now and bring it to this machine, with its sha256.

    backup.py STACK                  snapshot into ./backups/STACK/
    backup.py STACK --out DIR        snapshot into DIR

The snapshot is taken on the control plane by the same script its systemd timer
runs (it also lands in the node's snapshot directory, and on NFS when
backup.nfs is set), then streamed over SSH (through ssh.bastion, pinned host
keys checked, as scripts/preflight.py) and checked against the node's sha256.
The file holds every Secret of the cluster: it is written 0600, keep it so.
Exit status: 0 saved, 1 the snapshot or the copy failed, 2 bad usage or config.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components.backup.remote import BackupError, take_and_fetch  # noqa: E402
from components.stack_config import ConfigError  # noqa: E402
from components.stack_file import parse_stack_file, print_warnings  # noqa: E402


def default_out(stack: str) -> Path:
    return Path("backups") / stack


def main(argv: Optional[list[str]] = None, executor_for=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name (stacks/Pulumi.STACK.yaml)")
    parser.add_argument("--out", type=Path, help="directory for the snapshot (default: backups/STACK)")
    parser.add_argument("--key-file", help="SSH private key file")
    parser.add_argument("--stacks-dir", type=Path, help="where the stack files are (default: stacks/)")
    args = parser.parse_args(argv)
    try:
        config = parse_stack_file(args.stack, args.stacks_dir)
        print_warnings(config, "backup.py")
    except (ConfigError, FileNotFoundError, ValueError) as error:
        print(f"backup.py: {error}", file=sys.stderr)
        return 2
    node = config.control_plane
    out = args.out or default_out(args.stack)
    try:
        if executor_for is None:
            from components.backup.ssh import ssh_executor as executor_for  # tests need no paramiko
        with executor_for(config, node, args.key_file) as executor:
            fetched = take_and_fetch(executor, out)
    except (BackupError, ConfigError, OSError) as error:
        print(f"backup.py: {node.name}: {error}", file=sys.stderr)
        return 1
    print(f"{fetched.path}  {fetched.size} bytes  sha256 {fetched.sha256}  (from {node.name}; "
          f"nfs copy: {fetched.node_fields.get('nfs', 'off')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
