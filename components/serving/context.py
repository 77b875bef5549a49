"""What every serving layer needs from the cluster, and the options it applies."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import remote

from components.cluster.commands import node_command

WEBHOOK_TIMEOUT_SECONDS = "600"


@dataclass(frozen=True)
class ClusterHandle:
    provider: k8s.Provider
    # Kubernetes objects are deleted with this resource (the control plane's
    # kubeadm init): when the cluster goes, nothing is deleted one by one.
    teardown: pulumi.Resource
    # Every node Ready: the first serving layer waits for it.
    ready: pulumi.Resource
    control_plane_connection: remote.ConnectionArgs
    control_plane_address: str


def k8s_options(parent: pulumi.Resource, cluster: ClusterHandle,
                depends_on: Optional[Sequence[pulumi.Resource]] = None,
                deleted_with: Optional[pulumi.Resource] = None,
                **extra) -> pulumi.ResourceOptions:
    """parent, provider and deleted_with passed explicitly on every Kubernetes object
    (deleted with the cluster unless another resource is named)."""
    return pulumi.ResourceOptions(parent=parent, provider=cluster.provider,
                                  deleted_with=deleted_with or cluster.teardown,
                                  depends_on=list(depends_on or []), **extra)


def wait_for_endpoints(name: str, parent: pulumi.Resource, cluster: ClusterHandle,
                       namespace: str, service: str,
                       depends_on: Sequence[pulumi.Resource],
                       triggers: Optional[list] = None) -> remote.Command:
    """A step on the control plane that returns once `service` has ready endpoints.

    For webhooks with failurePolicy Fail: a Deployment can be Ready a moment
    before its Service routes to it, and every object the webhook checks is
    refused until then.
    """
    return node_command(
        name, cluster.control_plane_connection, "wait-endpoints.sh",
        {"NAMESPACE": namespace, "SERVICE": service, "TIMEOUT_SECONDS": WEBHOOK_TIMEOUT_SECONDS},
        triggers=triggers,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on),
                                    deleted_with=cluster.teardown))
