"""Layer 2, per worker: a fresh join token, kubeadm join, and cluster membership."""
from __future__ import annotations

from typing import Optional, Sequence

import pulumi

from components.cluster.commands import node_command
from components.cluster.control_plane import ControlPlane
from components.cluster.kubeadm_config import parse_join_command, render_join_config
from components.cluster.node_preparation import PreparedNode
from components.cluster.node_reset import node_reset
from components.stack_config import SshSettings

# Long enough for one join, short enough that a leaked token is soon useless.
JOIN_TOKEN_TTL = "1h"
DRAIN_TIMEOUT = "120s"


class WorkerNode(pulumi.ComponentResource):
    """Joins one prepared worker to the cluster.

    - `join-token`, on the control plane: a token issued for this worker only,
      when it is about to join (so a worker added weeks later still joins).
    - `join`, on the worker: kubeadm join (guarded).
    - `reset`, on this machine: nothing on create; on delete it resets the worker
      over SSH, or only warns when the worker does not answer within about 40 s
      (components/cluster/leave.py), so a worker that is gone for good does not
      fail every later run.
    - `membership`, on the control plane: waits for the Node object; on delete
      (the worker was removed from the stack) drains and deletes it first, before
      the reset. It is skipped when the whole cluster is destroyed (deleted_with
      the init step).
    """

    def __init__(self, prepared: PreparedNode, control_plane: ControlPlane,
                 opts: Optional[pulumi.ResourceOptions] = None,
                 before_join: Optional[pulumi.Resource] = None,
                 after: Sequence[pulumi.Resource] = (),
                 ssh: SshSettings = SshSettings(),
                 private_key: Optional[pulumi.Output] = None):
        """`before_join`: a step on the worker the join waits for too (a GPU node's
        containerd restart with the nvidia runtime, components/gpu/node.py).
        `after`: cluster steps the token waits for (the last control plane's join:
        workers join once every etcd member is in). `ssh` and `private_key`
        (None with an SSH agent): how the reset reaches the worker."""
        node = prepared.node
        super().__init__("kserve-cluster:cluster:WorkerNode", node.name, None, opts)
        cp_connection = control_plane.connection
        self.join_token = node_command(
            f"{node.name}-join-token", cp_connection, "join-token.sh",
            {"WORKER_NAME": node.name, "TOKEN_TTL": JOIN_TOKEN_TTL},
            secret_stdout=True,
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[control_plane.init, prepared.prepare,
                                                    *after]))
        join_config = pulumi.Output.secret(self.join_token.stdout.apply(
            lambda text: render_join_config(node, parse_join_command(text))))
        self.join = node_command(
            f"{node.name}-kubeadm-join", prepared.connection, "join-worker.sh",
            {"NODE_NAME": node.name},
            stdin=join_config,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                self.join_token, *([before_join] if before_join is not None else [])]))
        self.reset = node_reset(node, ssh, private_key,
                                pulumi.ResourceOptions(parent=self, depends_on=[self.join]))
        self.membership = node_command(
            f"{node.name}-membership", cp_connection, "node-membership.sh",
            {"ACTION": "wait", "NODE_NAME": node.name},
            delete_script="node-membership.sh",
            delete_env={"ACTION": "remove", "NODE_NAME": node.name,
                        "DRAIN_TIMEOUT": DRAIN_TIMEOUT},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.join, self.reset],
                                        deleted_with=control_plane.init))
        self.register_outputs({"joined": self.membership.stdout})
