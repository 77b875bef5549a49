"""Istio: base CRDs, istiod, and the ingress gateway on a node port."""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.serving.context import ClusterHandle, k8s_options

NAMESPACE = "istio-system"
# This release name gives the labels app=istio-ingressgateway and
# istio=ingressgateway, which net-istio's and KServe's gateways select.
GATEWAY_RELEASE = "istio-ingressgateway"


def gateway_values(node_port: int, https_node_port: int) -> dict:
    """The gateway chart's Service as a NodePort (kubeadm has no load balancer).

    The chart replaces the whole ports list when it is set, so all three ports
    are given; http2 and https get fixed node ports (`serving.ingressNodePort`,
    `serving.httpsNodePort`).
    """
    return {"service": {"type": "NodePort", "ports": [
        {"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
        {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": node_port},
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443,
         "nodePort": https_node_port},
    ]}}


class Istio(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, node_port: int, https_node_port: int,
                 opts: Optional[pulumi.ResourceOptions] = None,
                 train: versions.Train = versions.DEFAULT_TRAIN):
        super().__init__("kserve-cluster:serving:Istio", "istio", None, opts)
        repo = k8s.helm.v3.RepositoryOptsArgs(repo=versions.ISTIO_CHART_REPO)

        def release(name: str, chart: str, values: dict, after: list) -> k8s.helm.v3.Release:
            return k8s.helm.v3.Release(
                f"{name}-chart", name=name, chart=chart, version=train.istio_version,
                repository_opts=repo, namespace=NAMESPACE, create_namespace=True,
                values=values, opts=k8s_options(self, cluster, depends_on=after))

        self.base = release("istio-base", "base", {}, [cluster.ready])
        self.istiod = release("istiod", "istiod", {}, [self.base])
        # The gateway's pod template is filled in by istiod's injector: istiod first.
        self.gateway = release(GATEWAY_RELEASE, "gateway", gateway_values(node_port, https_node_port), [self.istiod])
        self.register_outputs({"version": self.istiod.version})
