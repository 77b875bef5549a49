"""In the cluster, with any GPU node: the RuntimeClass `nvidia` and NVIDIA's
k8s-device-plugin, which advertises each GPU node's `nvidia.com/gpu`.

    every node Ready -> RuntimeClass nvidia -> device plugin (on GPU nodes only)
                                                   -> GPU models (components/serving)

Why the plain device plugin and not the GPU Operator: docs/gpu.md.
"""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.gpu.config import RUNTIME_CLASS
from components.gpu.pods import gpu_node_selector, gpu_tolerations
from components.serving.context import ClusterHandle, k8s_options

NAMESPACE = "nvidia-device-plugin"
RELEASE = "nvidia-device-plugin"
RUNTIME_HANDLER = "nvidia"  # the runtime gpu-runtime.sh adds to containerd


def runtime_class_scheduling() -> dict:
    """A pod that names the RuntimeClass `nvidia` is only scheduled onto GPU nodes,
    and tolerates their taint (Kubernetes merges both into the pod)."""
    return {"nodeSelector": gpu_node_selector(), "tolerations": gpu_tolerations()}


def device_plugin_values() -> dict:
    """Chart values: the plugin's DaemonSet on GPU nodes only, through the nvidia
    runtime (it needs the driver's libraries, which that runtime mounts)."""
    return {
        "nodeSelector": gpu_node_selector(),
        "tolerations": gpu_tolerations(),
        "runtimeClassName": RUNTIME_CLASS,
    }


class GpuDevicePlugin(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:gpu:GpuDevicePlugin", "gpu", None, opts)
        self.runtime_class = k8s.node.v1.RuntimeClass(
            "runtimeclass-nvidia",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=RUNTIME_CLASS),
            handler=RUNTIME_HANDLER,
            scheduling=runtime_class_scheduling(),
            opts=k8s_options(self, cluster, depends_on=[cluster.ready]))
        self.release = k8s.helm.v3.Release(
            "nvidia-device-plugin-chart",
            name=RELEASE,
            chart=versions.NVIDIA_DEVICE_PLUGIN_CHART,
            version=versions.NVIDIA_DEVICE_PLUGIN_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(
                repo=versions.NVIDIA_DEVICE_PLUGIN_CHART_REPO),
            namespace=NAMESPACE,
            create_namespace=True,
            values=device_plugin_values(),
            opts=k8s_options(self, cluster, depends_on=[cluster.ready, self.runtime_class]))
        # What GPU models wait for: the plugin's DaemonSet rolled out on the GPU nodes.
        self.ready = self.release
        self.register_outputs({"version": self.release.version})
