"""A default StorageClass for a kubeadm cluster (which has none of its own).

- local-path: rancher/local-path-provisioner's release manifest (class
  `local-path`: a directory under /opt/local-path-provisioner on the node that
  first mounts the claim, ReadWriteOnce, WaitForFirstConsumer, reclaim Delete),
  then the class marked as the cluster's default.
- nfs: the nfs-subdir-external-provisioner chart (class `nfs-client`: a
  subdirectory of the export per claim, any access mode, default class).

Installed after every node is Ready; the claims wait for it.
"""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.serving.context import ClusterHandle, k8s_options
from components.storage.config import CLASS_OF, LOCAL_PATH, NFS, StorageSettings

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
NFS_NAMESPACE = "nfs-provisioner"


def nfs_values(settings: StorageSettings) -> dict:
    """Values of the nfs-subdir-external-provisioner chart (names as in its values.yaml)."""
    return {
        "image": {"repository": versions.NFS_PROVISIONER_IMAGE_REPOSITORY,
                  "tag": versions.NFS_PROVISIONER_IMAGE_TAG},
        "nfs": {"server": settings.nfs_server, "path": settings.nfs_path},
        "storageClass": {
            "name": CLASS_OF[NFS],
            "defaultClass": True,
            # The chart's default, written out because the README promises it: a
            # deleted claim's directory is renamed archived-..., never deleted.
            "archiveOnDelete": True,
        },
    }


class StorageProvisioner(pulumi.ComponentResource):
    """`ready`: what every claim waits for (empty when storage.provisioner is none)."""

    def __init__(self, cluster: ClusterHandle, settings: StorageSettings,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:storage:Provisioner", settings.provisioner, None, opts)
        self.ready: list[pulumi.Resource] = []
        if settings.provisioner == LOCAL_PATH:
            manifest = k8s.yaml.v2.ConfigFile(
                "local-path-provisioner", file=versions.LOCAL_PATH_PROVISIONER_MANIFEST_URL,
                opts=k8s_options(self, cluster, depends_on=[cluster.ready]))
            default = k8s.storage.v1.StorageClassPatch(
                "local-path-default-class",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name=CLASS_OF[LOCAL_PATH],
                    annotations={DEFAULT_CLASS_ANNOTATION: "true", "pulumi.com/patchForce": "true"}),
                opts=k8s_options(self, cluster, depends_on=[manifest]))
            self.ready = [manifest, default]
        elif settings.provisioner == NFS:
            self.ready = [k8s.helm.v3.Release(
                "nfs-provisioner-chart", name="nfs-provisioner",
                chart=versions.NFS_PROVISIONER_CHART,
                version=versions.NFS_PROVISIONER_CHART_VERSION,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.NFS_PROVISIONER_CHART_REPO),
                namespace=NFS_NAMESPACE, create_namespace=True, values=nfs_values(settings),
                opts=k8s_options(self, cluster, depends_on=[cluster.ready]))]
        self.register_outputs({"provisioner": settings.provisioner,
                               "storageClass": settings.class_name})
