"""A further control plane: it joins the first one, one at a time (stacked etcd)."""
from __future__ import annotations

from typing import Optional

import pulumi
from pulumi_command import local

from components.backup.config import BackupConfig
from components.backup.timer import EtcdBackup
from components.cluster.cert_renewal import certificate_renewal
from components.cluster.commands import node_command
from components.cluster.control_plane import ControlPlane
from components.cluster.kubeadm_config import parse_join_command, render_join_config
from components.cluster.node_preparation import PreparedNode
from components.stack_config import KubernetesSettings

# The token lives one hour; kubeadm keeps the uploaded certificates two hours.
JOIN_TOKEN_TTL = "1h"
DRAIN_TIMEOUT = "120s"


class JoinedControlPlane(pulumi.ComponentResource):
    """Joins one prepared node as a control plane after `after` (the init, or the
    control plane that joined before it): a new etcd member only once the last
    one is in, so quorum never waits on two unfinished members.

    - `snapshot`, on the first control plane: an etcd snapshot before the member
      is added (scripts/node/etcd-snapshot.sh, the backup timer's own program).
    - `join_key`, on the first control plane: the certificates uploaded again
      under a fresh key, and a fresh token; the join command is a secret.
    - `join`, on the node: kubeadm join --control-plane (guarded). When the node
      leaves the stack, its `reset` (on this machine) runs the timers' and
      keepalived/haproxy removals and kubeadm reset there, or only warns when the
      node does not answer; the steps on the node are deleted with it.
    - `membership`, on the first control plane: waits for the Node object; on
      delete drains it, removes its etcd member and deletes it (Pulumi deletes
      it before the reset, which then finds the member gone).
    - the etcd snapshot timer and the certificate renewal timer, as on the first.
    """

    def __init__(self, prepared: PreparedNode, first: ControlPlane,
                 kubernetes: KubernetesSettings, backup: BackupConfig,
                 after: pulumi.Resource, first_backup: pulumi.Resource,
                 reset: local.Command,
                 before_join: Optional[pulumi.Resource] = None,
                 schedulable: bool = False,
                 opts: Optional[pulumi.ResourceOptions] = None):
        """`reset`: the node's `<node>-reset` (components/cluster/node_reset.py), made
        before its virtual-IP step: when the node leaves, it resets the node from this
        machine (or warns that it does not answer), and the node's own steps, deleted
        with it, run no delete over SSH."""
        node = prepared.node
        super().__init__("kserve-cluster:cluster:JoinedControlPlane", node.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.node = node
        self.connection = prepared.connection
        on_first = first.connection
        self.snapshot = node_command(
            f"{node.name}-snapshot-before-join", on_first, "etcd-snapshot.sh",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[after, first_backup],
                                        deleted_with=first.init))
        waits = [self.snapshot, prepared.prepare] + ([before_join] if before_join else [])
        self.join_key = node_command(
            f"{node.name}-join-key", on_first, "control-plane-join-key.sh",
            {"NODE_NAME": node.name, "TOKEN_TTL": JOIN_TOKEN_TTL},
            secret_stdout=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=waits))
        join_config = pulumi.Output.secret(self.join_key.stdout.apply(
            lambda text: render_join_config(node, parse_join_command(text), schedulable)))
        login = {"LOGIN_USER": node.ssh_user}
        self.join = node_command(
            f"{node.name}-kubeadm-join", prepared.connection, "join-control-plane.sh",
            {"NODE_NAME": node.name, **login},
            stdin=join_config,
            delete_script="reset.sh", delete_env=login,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.join_key],
                                        deleted_with=reset))
        self.reset = reset
        self.etcd_backup = EtcdBackup(node, prepared.connection, backup, self.join, opts=child,
                                      deleted_with=reset)
        self.cert_renewal = certificate_renewal(
            node.name, prepared.connection, node.ssh_user, kubernetes.certificates,
            self.join, self, deleted_with=reset)
        self.membership = node_command(
            f"{node.name}-membership", on_first, "node-membership.sh",
            {"ACTION": "wait", "NODE_NAME": node.name},
            delete_script="node-membership.sh",
            delete_env={"ACTION": "remove-control-plane", "NODE_NAME": node.name,
                        "DRAIN_TIMEOUT": DRAIN_TIMEOUT},
            # After the timers, so that on delete it runs first, on the first control
            # plane: the etcd member goes even if the node cannot be reached.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                                            self.join, self.etcd_backup.timer, self.cert_renewal,
                                            reset],
                                        deleted_with=first.init))
        self.register_outputs({"joined": self.membership.stdout})
