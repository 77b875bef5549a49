"""A GPU node's own steps, between its preparation and its join:

    prepare.sh -> gpu-driver.sh -> gpu-toolkit.sh -> gpu-runtime.sh -> kubeadm join

The driver step is left out with `gpu.driver: preinstalled`. The inputs are
pure functions, tested alone.
"""
from __future__ import annotations

from typing import Optional

import pulumi
from pulumi_command import remote

from components import versions
from components.cluster.commands import node_command
from components.gpu.config import GpuConfig
from components.stack_config import Node


def driver_inputs(node: Node, gpu: GpuConfig) -> dict[str, str]:
    return {"DRIVER_BRANCH": gpu.driver, "NODE_NAME": node.name}


def toolkit_inputs() -> dict[str, str]:
    return {
        "TOOLKIT_APT_REPO": versions.NVIDIA_CONTAINER_TOOLKIT_APT_REPO,
        "TOOLKIT_GPGKEY_URL": versions.NVIDIA_CONTAINER_TOOLKIT_GPGKEY_URL,
        "TOOLKIT_VERSION": versions.NVIDIA_CONTAINER_TOOLKIT_VERSION,
        "TOOLKIT_PACKAGES": " ".join(versions.NVIDIA_CONTAINER_TOOLKIT_PACKAGES),
    }


class GpuNode(pulumi.ComponentResource):
    """The NVIDIA driver (unless preinstalled), the container toolkit and containerd's
    `nvidia` runtime on one GPU node. `ready` is the step the node's join waits for.

    The runtime step runs again whenever the node's preparation does (its
    `create` is a trigger): prepare.sh rewrites containerd's config.toml (it
    keeps the `imports` of /etc/containerd/conf.d, where nvidia-ctk's drop-in
    lives, so a re-run changes nothing and restarts nothing).
    """

    def __init__(self, node: Node, connection: remote.ConnectionArgs, gpu: GpuConfig,
                 prepare: remote.Command, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:gpu:GpuNode", node.name, None, opts)
        previous: remote.Command = prepare
        self.driver = None
        if gpu.installs_driver:
            self.driver = previous = node_command(
                f"{node.name}-gpu-driver", connection, "gpu-driver.sh",
                driver_inputs(node, gpu),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous]))
        self.toolkit = node_command(
            f"{node.name}-gpu-toolkit", connection, "gpu-toolkit.sh", toolkit_inputs(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[previous]))
        self.runtime = node_command(
            f"{node.name}-gpu-runtime", connection, "gpu-runtime.sh", {},
            triggers=[prepare.create],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.toolkit]))
        self.ready = self.runtime
        self.register_outputs({"runtime": self.runtime.stdout})
