"""The KServe controller (CRDs, controller, cluster serving runtimes)."""
from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.cluster.commands import node_command
from components.serving import deployment_mode
from components.serving.config import RAW_DEPLOYMENT, ServingConfig
from components.serving.context import ClusterHandle, k8s_options, wait_for_endpoints

NAMESPACE = "kserve"
WEBHOOK_SERVICE = "kserve-webhook-server-service"
RUNTIMES_RELEASE = "kserve-runtime-configs"
# KServe's RawDeployment hosts (inferenceservice-config `ingress.domainTemplate`, chart
# value kserve.controller.gateway.domainTemplate; KServe at the pinned tag,
# charts/kserve-resources/values.yaml:39, templates/configmap.yaml:508). KServe's default
# `{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}` is ambiguous (`iris-ml` in `prod` and
# `iris` in `ml-prod` are both iris-ml-prod.<domain>) and cannot be protected by namespace;
# this one is Knative's shape, so both modes put every host of a namespace under
# `.<namespace>.<domain>`. Helm does not render templates in values: the text reaches the
# ConfigMap as written (tests/test_chart_rendering.py renders it).
DOMAIN_TEMPLATE = "{{ .Name }}.{{ .Namespace }}.{{ .IngressDomain }}"


def _image(repository: str, train: versions.Train) -> dict:
    return {"image": repository, "tag": train.kserve_version}


def kserve_values(serving: ServingConfig) -> dict:
    """Values of the controller chart (`kserve`; `kserve-resources` from KServe v0.17).

    Every image the controller deploys is written out, so that the set can be
    checked (see `controller_images`): the v0.13 chart's default kube-rbac-proxy image
    no longer exists and is replaced (v0.14+ charts default to the same replacement).
    ModelMesh is off, as in the release manifest, and so are modelcars; the v0.15+ charts have no ModelMesh
    part (the key is then left out). Up to v0.16 the chart also installs the cluster
    serving runtimes; from v0.17 `runtime_config_values` feeds their own chart. The
    deployment mode is written with the name this train's KServe uses.
    """
    train = serving.train
    values = {
        "controller": {
            **_image("kserve/kserve-controller", train),
            "rbacProxyImage": versions.KUBE_RBAC_PROXY_IMAGE,
            "deploymentMode": train.kserve_deployment_mode(serving.deployment_mode),
            "gateway": {"domain": serving.ingress_domain, "domainTemplate": DOMAIN_TEMPLATE},
        },
        "agent": _image("kserve/agent", train),
        "router": _image("kserve/router", train),
        # Modelcars (oci:// models) stay off on every train, as stack validation assumes
        # (components/serving/config.py OCI_REFUSED): the v0.15+ charts turn them on.
        "storage": {**_image("kserve/storage-initializer", train), "enableModelcar": False},
    }
    if versions.release_key(train.kserve_version) < (0, 15):
        values["modelmesh"] = {"enabled": False}
    return {"kserve": values}


def runtime_config_values() -> dict:
    """Values of `kserve-runtime-configs` (KServe v0.17+): the cluster serving runtimes
    on, as the v0.16 and older controller charts installed them."""
    return {"kserve": {"servingruntime": {"enabled": True}}}


def controller_images(values: dict) -> set[str]:
    """Every image named in the controller part of `kserve_values`."""
    kserve = values["kserve"]
    images = {kserve["controller"]["rbacProxyImage"]}
    for part in (kserve["controller"], kserve["agent"], kserve["router"], kserve["storage"]):
        images.add(f"{part['image']}:{part['tag']}")
    return images


class KServe(pulumi.ComponentResource):
    """CRDs, then the controller; `webhook_ready` is the gate for runtimes, `models_ready`
    for models."""

    def __init__(self, cluster: ClusterHandle, serving: ServingConfig,
                 after: Sequence[pulumi.Resource],
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:serving:KServe", "kserve", None, opts)
        train = serving.train
        # v0.17+ chart layout: before kserve-crd and the controller move, the CRDs and the
        # cluster serving runtimes are kept by Helm and the runtimes handed to
        # kserve-runtime-configs (KServe's upgrade guide, v0.16 -> v0.17), so that no
        # upgrade deletes them; that release adopts them after the controller's webhook.
        # Once per KServe version; on a fresh cluster it finds nothing.
        self.chart_handover = None
        if train.kserve_runtimes_chart:
            self.chart_handover = node_command(
                "kserve-chart-handover", cluster.control_plane_connection,
                "kserve-chart-handover.sh",
                {"RUNTIMES_RELEASE": RUNTIMES_RELEASE, "RELEASE_NAMESPACE": NAMESPACE},
                triggers=[train.kserve_version],
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(after),
                                            deleted_with=cluster.teardown))
        handover = [self.chart_handover] if self.chart_handover else []
        self.crds = k8s.helm.v3.Release(
            "kserve-crd-chart", name="kserve-crd", chart=versions.KSERVE_CRD_CHART,
            version=train.kserve_version, namespace=NAMESPACE, create_namespace=True,
            opts=k8s_options(self, cluster, depends_on=[*after, *handover]))
        self.values = kserve_values(serving)
        # The Helm release keeps its name `kserve` on every train: only the chart it
        # installs was renamed (v0.17), and a new release name would be a second install.
        self.controller = k8s.helm.v3.Release(
            "kserve-chart", name="kserve", chart=train.kserve_chart,
            version=train.kserve_version, namespace=NAMESPACE, create_namespace=True,
            values=self.values,
            opts=k8s_options(self, cluster, depends_on=[self.crds, *after]))
        # v0.17+: the cluster serving runtimes come from their own chart; they are
        # admitted by the controller's webhook, so they wait for it (below).
        self.runtime_configs = None
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
            triggers=[train.kserve_version, serving.deployment_mode])
        if train.kserve_runtimes_chart:
            self.runtime_configs = k8s.helm.v3.Release(
                "kserve-runtime-configs-chart", name=RUNTIMES_RELEASE,
                chart=train.kserve_runtimes_chart, version=train.kserve_version,
                namespace=NAMESPACE, values=runtime_config_values(),
                opts=k8s_options(self, cluster, depends_on=[self.webhook_ready]))
        # KServe v0.16+ renamed the deployment modes and its webhook refuses an update whose
        # annotation is not the recorded mode's name (components/serving/deployment_mode.py):
        # before the models are touched, each annotation is set to the accepted name. Once
        # per KServe version: the webhook's rule and the recorded names change only then.
        self.mode_annotations = None
        if deployment_mode.renames(train.kserve_version):
            self.mode_annotations = node_command(
                "kserve-mode-annotations", cluster.control_plane_connection,
                "kserve-mode-annotations.sh",
                {"NORMALIZE": "true" if deployment_mode.normalizes_status(train.kserve_version)
                 else "false"},
                triggers=[train.kserve_version],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.webhook_ready],
                                            deleted_with=cluster.teardown))
        # What models wait for: the webhook, and the annotations it accepts.
        self.models_ready = self.mode_annotations or self.webhook_ready
        # The release that installs the cluster serving runtimes models may use.
        self.cluster_runtimes = self.runtime_configs or self.controller
        self.register_outputs({"version": self.controller.version,
                               "deploymentMode": serving.deployment_mode})
