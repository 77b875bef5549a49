"""cert-manager: the certificates behind KServe's admission webhooks."""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.serving.context import ClusterHandle, k8s_options, wait_for_endpoints

NAMESPACE = "cert-manager"
WEBHOOK_SERVICE = "cert-manager-webhook"  # <release name>-webhook


def cert_manager_values() -> dict:
    # crds.enabled replaced installCRDs in 1.15; keep the CRDs if the release goes.
    return {"crds": {"enabled": True, "keep": True}}


class CertManager(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, opts: Optional[pulumi.ResourceOptions] = None,
                 train: versions.Train = versions.DEFAULT_TRAIN):
        super().__init__("kserve-cluster:serving:CertManager", "cert-manager", None, opts)
        self.release = k8s.helm.v3.Release(
            "cert-manager-chart",
            name="cert-manager",
            chart="cert-manager",
            version=train.cert_manager_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.CERT_MANAGER_CHART_REPO),
            namespace=NAMESPACE,
            create_namespace=True,
            values=cert_manager_values(),
            opts=k8s_options(self, cluster, depends_on=[cluster.ready]))
        self.webhook_ready = wait_for_endpoints(
            "cert-manager-webhook-ready", self, cluster, NAMESPACE, WEBHOOK_SERVICE,
            depends_on=[self.release], triggers=[train.cert_manager_version])
        self.register_outputs({"version": self.release.version})
