#!/usr/bin/env python3
"""Restore the cluster's etcd from a snapshot file (after a confirmation).

    restore.py STACK SNAPSHOT          asks you to type the stack name first
    restore.py STACK SNAPSHOT --yes    no question (for scripts)

SNAPSHOT is a file on this machine, e.g. one scripts/backup.py saved (its
.sha256 next to it is checked when present). It is sent to the control plane
(root-only, 0600) and scripts/node/etcd-restore.sh restores it the documented
stacked-etcd way: the control-plane static pods stopped (manifests moved aside),
`etcdutl snapshot restore` into a new data directory with the member's name and
peer URL, the data directories swapped (the old one kept), the manifests put
back, kubelet restarted, then etcd and the API server awaited.
Everything written to the cluster after the snapshot is lost. One control plane
only (this project builds one). Never run by `pulumi up`.
Exit status: 0 restored, 1 failed, 2 bad usage or config, 3 not confirmed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components.backup.remote import BackupError, upload_and_restore  # noqa: E402
from components.stack_config import ConfigError  # noqa: E402
from components.stack_file import parse_stack_file, print_warnings  # noqa: E402


def confirmed(stack: str, node: str, snapshot: Path, ask: Callable[[str], str]) -> bool:
    print(f"This replaces ALL of stack {stack}'s cluster state (etcd on {node}) with "
          f"{snapshot}.\nEverything changed since that snapshot is lost, and the API "
          "server is down during the restore.", file=sys.stderr)
    try:
        return ask(f"Type the stack name ({stack}) to go on: ").strip() == stack
    except EOFError:
        return False


def main(argv: Optional[list[str]] = None, executor_for=None,
         ask: Callable[[str], str] = input) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name (stacks/Pulumi.STACK.yaml)")
    parser.add_argument("snapshot", type=Path, help="the snapshot file on this machine")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--key-file", help="SSH private key file")
    parser.add_argument("--stacks-dir", type=Path, help="where the stack files are (default: stacks/)")
    args = parser.parse_args(argv)
    try:
        config = parse_stack_file(args.stack, args.stacks_dir)
        print_warnings(config, "restore.py")
    except (ConfigError, FileNotFoundError, ValueError) as error:
        print(f"restore.py: {error}", file=sys.stderr)
        return 2
    if not args.snapshot.is_file():
        print(f"restore.py: {args.snapshot}: no such file", file=sys.stderr)
        return 2
    control_planes = [n for n in config.nodes if n.is_control_plane]
    if len(control_planes) != 1:
        print("restore.py: only a single control plane can be restored today "
              f"(the stack has {len(control_planes)}).", file=sys.stderr)
        return 2
    node = control_planes[0]
    if not args.yes and not confirmed(args.stack, node.name, args.snapshot, ask):
        print("restore.py: not confirmed; nothing was changed.", file=sys.stderr)
        return 3
    if executor_for is None:
        from components.backup.ssh import ssh_executor as executor_for  # tests need no paramiko
    try:
        with executor_for(config, node, args.key_file) as executor:
            result = upload_and_restore(executor, args.snapshot,
                                        say=lambda line: print(line, file=sys.stderr))
    except (BackupError, ConfigError, OSError) as error:
        print(f"restore.py: {node.name}: {error}", file=sys.stderr)
        return 1
    print(f"restored {args.snapshot.name} on {node.name}; kube-system UID "
          f"{result.get('kube_system_uid', '?')}; previous etcd data kept in "
          f"{result.get('previous_data_dir', '?')} on the node")
    return 0


if __name__ == "__main__":
    sys.exit(main())
