"""Layer 3: Calico through the tigera-operator Helm chart."""
from __future__ import annotations

import ipaddress
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import remote

from components import versions
from components.cluster.commands import node_command
from components.stack_config import KubernetesSettings

NAMESPACE = "tigera-operator"
CRDS_RELEASE = "calico-crds"  # the crd.projectcalico.org.v1 chart's release (v3.32+)


def calico_values(kubernetes: KubernetesSettings) -> dict:
    """Chart values: the pod CIDR as the IP pool, and each node's address taken
    from its Kubernetes InternalIP, which kubelet gets from --node-ip (the
    configured address). Without this, Calico picks the first interface it
    finds, which on VirtualBox-style VMs is the NAT one."""
    ipv6 = ipaddress.ip_network(kubernetes.pod_cidr).version == 6
    network = {
        "ipPools": [{
            "cidr": kubernetes.pod_cidr,
            "encapsulation": "VXLANCrossSubnet",
            "natOutgoing": "Enabled",
            "nodeSelector": "all()",
        }],
        ("nodeAddressAutodetectionV6" if ipv6 else "nodeAddressAutodetectionV4"):
            {"kubernetes": "NodeInternalIP"},
    }
    return {"installation": {"enabled": True, "kubernetesProvider": "",
                             "calicoNetwork": network}}


class Calico(pulumi.ComponentResource):
    def __init__(self, kubernetes: KubernetesSettings, provider: k8s.Provider,
                 teardown: pulumi.Resource, opts: Optional[pulumi.ResourceOptions] = None,
                 train: Optional[versions.Train] = None,
                 connection: Optional[remote.ConnectionArgs] = None):
        """`train`: this run's versions (components/upgrade/layer_run.py); by default the
        train of kubernetes.version. `connection`: the first control plane, where the
        version's CRDs are applied before the charts."""
        super().__init__("kserve-cluster:cluster:Calico", "calico", None, opts)
        train = train or kubernetes.train
        # Helm does not upgrade the CRDs in the operator chart's crds/: each Calico version's
        # CRDs are applied server-side first, as Calico's upgrade docs say. From v3.32 the
        # same command hands the CRDs (unowned when an older train installed them) to the
        # CRD chart's release, which would otherwise refuse to install over them.
        self.crds_applied = None
        if connection is not None:
            adopt = ({"RELEASE": CRDS_RELEASE, "RELEASE_NAMESPACE": NAMESPACE}
                     if train.calico_crds_chart else {})
            self.crds_applied = node_command(
                "calico-crds", connection, "calico-crds.sh",
                {"CRDS_URL": train.calico_crds_url, **adopt},
                triggers=[train.calico_version],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[teardown],
                                            deleted_with=teardown))
        first = [self.crds_applied] if self.crds_applied else []
        # Calico v3.32+: the CRDs come from their own chart, before the operator that
        # reads them. As templates (not crds/), Helm upgrades them with the release.
        self.crds = None
        if train.calico_crds_chart:
            self.crds = k8s.helm.v3.Release(
                "calico-crds-chart",
                name=CRDS_RELEASE,
                chart=train.calico_crds_chart,
                version=train.calico_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.CALICO_CHART_REPO),
                namespace=NAMESPACE,
                create_namespace=True,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, deleted_with=teardown,
                                            depends_on=first))
        self.release = k8s.helm.v3.Release(
            "tigera-operator-chart",
            name="calico",
            chart=versions.CALICO_CHART,
            version=train.calico_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.CALICO_CHART_REPO),
            namespace=NAMESPACE,
            create_namespace=True,
            values=calico_values(kubernetes),
            # The operator rolls Calico out after the release is installed; node
            # readiness is awaited by the cluster's wait-nodes-ready step.
            wait_for_jobs=False,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, deleted_with=teardown,
                                        depends_on=[self.crds] if self.crds else first))
        self.register_outputs({"version": self.release.version})
