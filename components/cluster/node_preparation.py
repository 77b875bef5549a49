"""Layer 1, per node: make a bare Ubuntu 22.04 machine ready for kubeadm."""
from __future__ import annotations

from typing import Optional

import pulumi
from pulumi_command import remote

from components import versions
from components.cluster.commands import node_command
from components.stack_config import KubernetesSettings, Node


def prepare_inputs(node: Node, kubernetes: KubernetesSettings,
                   extra_packages: tuple[str, ...] = ()) -> dict[str, str]:
    """The inputs of scripts/node/prepare.sh for one node (pure, tested alone)."""
    # Only when there are any: a stack without them keeps its inputs as they were.
    extra = {"EXTRA_PACKAGES": " ".join(extra_packages)} if extra_packages else {}
    return {
        **extra,
        "NODE_ROLE": node.role,
        "K8S_VERSION_TAG": kubernetes.version_tag,
        "K8S_PACKAGE_VERSION": versions.kubernetes_package_version(kubernetes.version),
        "K8S_APT_REPO": kubernetes.train.kubernetes_apt_repo,
        "CONTAINERD_PACKAGE_VERSION": kubernetes.train.containerd_package_version,
        "DOCKER_APT_REPO": versions.DOCKER_APT_REPO,
        "PAUSE_IMAGE": kubernetes.train.pause_image,
    }


class PreparedNode(pulumi.ComponentResource):
    """Swap off, modules, sysctls, containerd, pinned kubelet/kubeadm/kubectl.

    Destroying it leaves the packages installed (the cluster state itself is
    removed by the init/join steps' delete), so a re-created cluster is quick.
    """

    def __init__(self, node: Node, connection: remote.ConnectionArgs,
                 kubernetes: KubernetesSettings, preflight_passed: pulumi.Input[str],
                 opts: Optional[pulumi.ResourceOptions] = None,
                 extra_packages: tuple[str, ...] = ()):
        super().__init__("kserve-cluster:cluster:PreparedNode", node.name, None, opts)
        self.node = node
        self.connection = connection
        self.prepare = node_command(
            f"{node.name}-prepare", connection, "prepare.sh",
            prepare_inputs(node, kubernetes, extra_packages),
            # The preflight verdict over every node: nothing is prepared until all pass.
            triggers=[preflight_passed],
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"prepared": self.prepare.stdout})
