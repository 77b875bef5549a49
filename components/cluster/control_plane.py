"""Layer 2: kubeadm init on the control plane, and the admin kubeconfig."""
from __future__ import annotations

from typing import Optional, Sequence

import pulumi

from components.cluster.cert_renewal import certificate_renewal, kubeconfig_read_triggers
from components.cluster.commands import node_command
from components.cluster.kubeadm_config import render_init_config
from components.cluster.node_preparation import PreparedNode
from components.stack_config import KubernetesSettings


class ControlPlane(pulumi.ComponentResource):
    """kubeadm init (guarded) and the admin kubeconfig, read back as a secret.

    On delete the node is reset (kubeadm reset plus what it leaves behind).
    """

    def __init__(self, prepared: PreparedNode, kubernetes: KubernetesSettings,
                 schedulable: bool = False, opts: Optional[pulumi.ResourceOptions] = None,
                 before_init: Sequence[pulumi.Resource] = ()):
        """`before_init`: steps on this node init waits for too (the virtual IP's
        haproxy and keepalived, components/cluster/virtual_ip.py)."""
        node = prepared.node
        super().__init__("kserve-cluster:cluster:ControlPlane", node.name, None, opts)
        self.node = node
        self.connection = prepared.connection
        login = {"LOGIN_USER": node.ssh_user}
        env = dict(login)
        if kubernetes.high_availability is not None:
            # The certificates go into the cluster for the control planes that
            # join, and a cluster built with another endpoint is refused.
            env.update(UPLOAD_CERTS="true",
                       CONTROL_PLANE_ENDPOINT=kubernetes.control_plane_endpoint)
        self.init = node_command(
            f"{node.name}-kubeadm-init", prepared.connection, "init-control-plane.sh", env,
            stdin=render_init_config(node, kubernetes, schedulable),
            delete_script="reset.sh", delete_env=login,
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[prepared.prepare, *before_init]))
        self.kubeconfig_read = node_command(
            f"{node.name}-admin-kubeconfig", prepared.connection, "read-kubeconfig.sh",
            secret_stdout=True,
            # read again when the control plane is re-initialised, and every half
            # renewal window for renewed certificates (components/cluster/cert_renewal.py)
            triggers=kubeconfig_read_triggers(self.init.id, kubernetes.certificates),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.init]))
        self.cert_renewal = certificate_renewal(
            node.name, prepared.connection, node.ssh_user, kubernetes.certificates,
            self.init, self)
        self.kubeconfig = pulumi.Output.secret(self.kubeconfig_read.stdout)
        self.register_outputs({"kubeconfig": self.kubeconfig})
