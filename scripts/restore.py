#!/usr/bin/env python3
"""Restore the cluster's etcd from a snapshot file (after a confirmation).

    restore.py STACK SNAPSHOT          asks you to type the stack name first
    restore.py STACK SNAPSHOT --yes    no question (for scripts)

SNAPSHOT is a file on this machine, e.g. one scripts/backup.py saved (its
.sha256 next to it is checked when present). It is sent to every control plane
of the stack (1, 3 or 5; root-only, 0600) and scripts/node/etcd-restore.sh
restores the stacked etcd the documented way (etcd.io v3.5 op-guide/recovery,
kubernetes.io "Restoring an etcd cluster"), each phase on every control plane
before the next: the control-plane static pods stopped everywhere (manifests
moved aside); every member restored from this one snapshot with `etcdutl
snapshot restore` (its own --name and peer URL, the whole --initial-cluster, a
new --initial-cluster-token) into a new data directory; the data directories
swapped (the old ones kept), the manifests put back and kubelet restarted (so
the scheduler and controller manager restart too); etcd and the API server
awaited; then kubelet restarted on every worker. A failure before the swap
puts every node back as it was.
Everything written to the cluster after the snapshot is lost. Every control
plane of the stack must answer over SSH. Never run by `pulumi up`.
Exit status: 0 restored, 1 failed, 2 bad usage or config, 3 not confirmed.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components.backup.remote import (  # noqa: E402
    BackupError, restart_kubelet_command, restore_cluster)
from components.stack_config import ConfigError  # noqa: E402
from components.stack_file import parse_stack_file, print_warnings  # noqa: E402


def confirmed(stack: str, nodes: list[str], snapshot: Path, ask: Callable[[str], str]) -> bool:
    print(f"This replaces ALL of stack {stack}'s cluster state (etcd on {', '.join(nodes)}) with "
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
    if len(control_planes) not in (1, 3, 5):
        print(f"restore.py: the stack lists {len(control_planes)} control planes; a stacked etcd "
              "is restored on 1, 3 or 5 (fix kserve-cluster:nodes first).", file=sys.stderr)
        return 2
    names = [n.name for n in control_planes]
    if not args.yes and not confirmed(args.stack, names, args.snapshot, ask):
        print("restore.py: not confirmed; nothing was changed.", file=sys.stderr)
        return 3
    if executor_for is None:
        from components.backup.ssh import ssh_executor as executor_for  # tests need no paramiko
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    where = ""  # the node being connected to; the restore's own errors name theirs
    try:
        with contextlib.ExitStack() as opened:
            executors = []
            for node in control_planes:  # every connection first: none touched if one is missing
                where = f"{node.name}: "
                executors.append((node.name, opened.enter_context(
                    executor_for(config, node, args.key_file))))
            where = ""
            result = restore_cluster(executors, args.snapshot, say=say)
    except (BackupError, ConfigError, OSError) as error:
        print(f"restore.py: {where}{error}", file=sys.stderr)
        return 1
    restart_workers(config, executor_for, args.key_file, say)
    print(f"restored {args.snapshot.name} on {', '.join(names)} (members {result['members']}); "
          f"kube-system UID {result.get('kube_system_uid', '?')}; previous etcd data kept in "
          f"{result.get('previous_data_dir', '?')} on the node")
    return 0


def restart_workers(config, executor_for, key_file, say) -> None:
    """kubernetes.io recommends restarting the kubelets after a restore so that none
    keeps state the snapshot does not have; a worker that does not answer is a warning."""
    for node in (n for n in config.nodes if not n.is_control_plane):
        try:
            with executor_for(config, node, key_file) as executor:
                status, _, err = executor.run(restart_kubelet_command())
            if status != 0:
                raise BackupError(f"exit {status}: {err.strip()[-200:]}")
            say(f"{node.name}: kubelet restarted")
        except (BackupError, ConfigError, OSError) as error:
            say(f"WARNING: {node.name}: could not restart kubelet ({error}); "
                "run `sudo systemctl restart kubelet` there")

if __name__ == "__main__":
    sys.exit(main())
