"""The KServe controller (CRDs, controller, cluster serving runtimes)."""
from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.serving.config import RAW_DEPLOYMENT, ServingConfig
from components.serving.context import ClusterHandle, k8s_options, wait_for_endpoints

NAMESPACE = "kserve"
WEBHOOK_SERVICE = "kserve-webhook-server-service"
# KServe's RawDeployment hosts (inferenceservice-config `ingress.domainTemplate`, chart
# value kserve.controller.gateway.domainTemplate; KServe at the pinned tag,
# charts/kserve-resources/values.yaml:39, templates/configmap.yaml:508). KServe's default
# `{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}` is ambiguous (`iris-ml` in `prod` and
# `iris` in `ml-prod` are both iris-ml-prod.<domain>) and cannot be protected by namespace;
# this one is Knative's shape, so both modes put every host of a namespace under
# `.<namespace>.<domain>`. Helm does not render templates in values: the text reaches the
# ConfigMap as written (tests/test_chart_rendering.py renders it).
DOMAIN_TEMPLATE = "{{ .Name }}.{{ .Namespace }}.{{ .IngressDomain }}"


def _image(repository: str) -> dict:
    return {"image": repository, "tag": versions.KSERVE_VERSION}


def kserve_values(serving: ServingConfig) -> dict:
    """Values of the `kserve` chart.

    Every image the controller deploys is written out, so that the set can be
    checked (see `controller_images`): the chart's default kube-rbac-proxy image
    no longer exists and is replaced. ModelMesh is off, as in the release
    manifest. The chart also installs the cluster serving runtimes.
    """
    return {"kserve": {
        "controller": {
            **_image("kserve/kserve-controller"),
            "rbacProxyImage": versions.KUBE_RBAC_PROXY_IMAGE,
            "deploymentMode": serving.deployment_mode,
            "gateway": {"domain": serving.ingress_domain, "domainTemplate": DOMAIN_TEMPLATE},
        },
        "agent": _image("kserve/agent"),
        "router": _image("kserve/router"),
        "storage": _image("kserve/storage-initializer"),
        "modelmesh": {"enabled": False},
    }}


def controller_images(values: dict) -> set[str]:
    """Every image named in the controller part of `kserve_values`."""
    kserve = values["kserve"]
    images = {kserve["controller"]["rbacProxyImage"]}
    for part in (kserve["controller"], kserve["agent"], kserve["router"], kserve["storage"]):
        images.add(f"{part['image']}:{part['tag']}")
    return images


class KServe(pulumi.ComponentResource):
    """CRDs, then the controller; `webhook_ready` is the gate for runtimes and models."""

    def __init__(self, cluster: ClusterHandle, serving: ServingConfig,
                 after: Sequence[pulumi.Resource],
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:serving:KServe", "kserve", None, opts)
        self.crds = k8s.helm.v3.Release(
            "kserve-crd-chart", name="kserve-crd", chart=versions.KSERVE_CRD_CHART,
            version=versions.KSERVE_VERSION, namespace=NAMESPACE, create_namespace=True,
            opts=k8s_options(self, cluster, depends_on=list(after)))
        self.values = kserve_values(serving)
        self.controller = k8s.helm.v3.Release(
            "kserve-chart", name="kserve", chart=versions.KSERVE_CHART,
            version=versions.KSERVE_VERSION, namespace=NAMESPACE, create_namespace=True,
            values=self.values,
            opts=k8s_options(self, cluster, depends_on=[self.crds, *after]))
        extra = []
        if serving.deployment_mode == RAW_DEPLOYMENT:
            # KServe's raw deployments create Ingresses of class istio; Istio serves
            # them through the same ingress gateway, but nobody creates the class.
            extra.append(k8s.networking.v1.IngressClass(
                "istio-ingress-class",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="istio"),
                spec=k8s.networking.v1.IngressClassSpecArgs(controller="istio.io/ingress-controller"),
                opts=k8s_options(self, cluster, depends_on=list(after))))
        self.ingress_class = extra[0] if extra else None
        self.webhook_ready = wait_for_endpoints(
            "kserve-webhook-ready", self, cluster, NAMESPACE, WEBHOOK_SERVICE,
            depends_on=[self.controller, *extra],
            triggers=[versions.KSERVE_VERSION, serving.deployment_mode])
        self.register_outputs({"version": self.controller.version,
                               "deploymentMode": serving.deployment_mode})
