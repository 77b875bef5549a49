"""The etcd snapshot timer on a control plane, as its own remote.Command."""
from __future__ import annotations

from typing import Optional

import pulumi

from components import versions
from components.backup.config import SNAPSHOT_DIR, BackupConfig
from components.cluster.commands import node_command
from components.cluster.node_scripts import script_text
from components.stack_config import Node

INSTALL_SCRIPT = "etcd-backup-install.sh"
REMOVE_SCRIPT = "etcd-backup-remove.sh"
SNAPSHOT_SCRIPT = "etcd-snapshot.sh"


def install_inputs(backup: BackupConfig) -> dict[str, str]:
    """The install script's inputs: every one of them is also a trigger."""
    return {
        "ETCD_VERSION": versions.ETCD_CLIENT_VERSION,
        "ETCD_RELEASE_URL": versions.ETCD_RELEASE_URL,
        "ETCD_SHA256_AMD64": versions.ETCD_CLIENT_SHA256["amd64"],
        "ETCD_SHA256_ARM64": versions.ETCD_CLIENT_SHA256["arm64"],
        "SCHEDULE": backup.schedule,
        "KEEP": str(backup.keep),
        "SNAPSHOT_DIR": SNAPSHOT_DIR,
        "NFS_SERVER": backup.nfs_server,
        "NFS_PATH": backup.nfs_path,
    }


def backup_output(backup: BackupConfig, control_planes: list[Node]) -> dict:
    """What `up` knows about the snapshots (the `backup` output): when and where.
    The last snapshot's time, size and sha256 exist only after the timer ran: they
    are in `last` in the snapshot directory on the node (docs/operations.md)."""
    return {
        "schedule": backup.schedule,
        "keep": backup.keep,
        "nodes": [n.name for n in control_planes],
        "directory": SNAPSHOT_DIR,
        "nfs": f"{backup.nfs_server}:{backup.nfs_path}" if backup.nfs else None,
        "etcdMembers": [{"name": n.name, "peerURL": f"https://{_host(n.address)}:2380"}
                        for n in control_planes],
    }


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


class EtcdBackup(pulumi.ComponentResource):
    """Installs the snapshot timer after kubeadm init; removes it on delete."""

    def __init__(self, node: Node, connection, backup: BackupConfig, after: pulumi.Resource,
                 opts: Optional[pulumi.ResourceOptions] = None,
                 deleted_with: Optional[pulumi.Resource] = None):
        """`deleted_with`: a step whose delete removes the timer too (a leaving control
        plane's reset, components/cluster/node_reset.py)."""
        super().__init__("kserve-cluster:backup:EtcdBackup", node.name, None, opts)
        inputs = install_inputs(backup)
        runner = script_text(SNAPSHOT_SCRIPT)
        self.timer = node_command(
            f"{node.name}-etcd-backup-timer", connection, INSTALL_SCRIPT, inputs,
            stdin=runner,
            delete_script=REMOVE_SCRIPT,
            # Runs again when any input or the snapshot script changes, and when
            # the control plane is initialised again.
            triggers=[*(f"{k}={v}" for k, v in sorted(inputs.items())),
                      f"runner={_digest(runner)}", after.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[after],
                                        deleted_with=deleted_with))
        self.register_outputs({})


def _digest(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()
