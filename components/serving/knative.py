"""Knative Serving (CRDs, core) and net-istio, with the ingress domain set."""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.serving.context import ClusterHandle, k8s_options, wait_for_endpoints

NAMESPACE = "knative-serving"
WEBHOOK_SERVICE = "webhook"


def domain_data(domain: str) -> dict:
    """config-domain data: an empty value makes `domain` the default for every route.

    Without it Knative names routes under svc.cluster.local, which the ingress
    gateway does not serve (the model answers 404 from outside).
    """
    return {domain: ""}


class KnativeServing(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, domain: str, after_istio: pulumi.Resource,
                 opts: Optional[pulumi.ResourceOptions] = None, hpa_class: bool = False,
                 train: versions.Train = versions.DEFAULT_TRAIN):
        super().__init__("kserve-cluster:serving:KnativeServing", "knative-serving", None, opts)
        self.crds = k8s.yaml.v2.ConfigFile(
            "knative-serving-crds", file=train.knative_serving_crds_url,
            opts=k8s_options(self, cluster, depends_on=[after_istio]))
        self.core = k8s.yaml.v2.ConfigFile(
            "knative-serving-core", file=train.knative_serving_core_url,
            opts=k8s_options(self, cluster, depends_on=[self.crds]))
        # net-istio creates a Service in istio-system and Gateways for Istio's CRDs.
        self.net_istio = k8s.yaml.v2.ConfigFile(
            "knative-net-istio", file=train.knative_net_istio_url,
            opts=k8s_options(self, cluster, depends_on=[self.core, after_istio]))
        # Knative's HPA autoscaler class, for Serverless models that scale on cpu (the
        # extension's controller turns their PodAutoscalers into HPAs).
        self.hpa = k8s.yaml.v2.ConfigFile(
            "knative-serving-hpa", file=train.knative_serving_hpa_url,
            opts=k8s_options(self, cluster, depends_on=[self.core])) if hpa_class else None
        # Knative's webhook validates its own ConfigMaps: patch config-domain after it serves.
        self.webhook_ready = wait_for_endpoints(
            "knative-webhook-ready", self, cluster, NAMESPACE, WEBHOOK_SERVICE,
            depends_on=[self.core], triggers=[train.knative_serving_version])
        self.config_domain = k8s.core.v1.ConfigMapPatch(
            "knative-config-domain",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name="config-domain", namespace=NAMESPACE,
                annotations={"pulumi.com/patchForce": "true"}),
            data=domain_data(domain),
            opts=k8s_options(self, cluster, depends_on=[self.webhook_ready]))
        self.register_outputs({"domain": domain})
