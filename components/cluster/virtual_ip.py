"""The virtual IP on every control plane: haproxy and keepalived, before kubeadm."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import pulumi

from components import versions
from components.cluster.commands import node_command
from components.cluster.ha_endpoint import endpoint_inputs
from components.cluster.high_availability import HighAvailability
from components.cluster.node_preparation import PreparedNode

REMOVE_SCRIPT = "ha-endpoint-remove.sh"


class VirtualIp(pulumi.ComponentResource):
    """`<node>-ha-endpoint` on each control plane, right after it is prepared and
    independent of the others; on delete (the control plane leaves the stack)
    keepalived and haproxy stop there. `endpoints[name]` is the step a node's
    kubeadm init or join waits for."""

    def __init__(self, ha: HighAvailability, prepared: Sequence[PreparedNode],
                 opts: Optional[pulumi.ResourceOptions] = None,
                 resets: Optional[Mapping[str, pulumi.Resource]] = None):
        """`resets`: by node, a step whose delete stops keepalived and haproxy there
        too (a leaving control plane's reset, components/cluster/node_reset.py)."""
        resets = resets or {}
        super().__init__("kserve-cluster:cluster:VirtualIp", "virtual-ip", None, opts)
        control_planes = [p.node for p in prepared]
        self.endpoints = {
            p.node.name: node_command(
                f"{p.node.name}-ha-endpoint", p.connection, "ha-endpoint.sh",
                endpoint_inputs(ha, p.node, control_planes, versions.KEEPALIVED_PACKAGE_VERSION,
                                versions.HAPROXY_PACKAGE_VERSION),
                delete_script=REMOVE_SCRIPT,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[p.prepare],
                                            deleted_with=resets.get(p.node.name)))
            for p in prepared
        }
        self.register_outputs({"endpoint": ha.endpoint})
