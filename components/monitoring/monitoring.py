"""The monitoring layer: Prometheus and Grafana, what they scrape, the Models
dashboard, prometheus-adapter, dcgm-exporter on GPU nodes, and the requests/s and
GPU utilisation HPAs of RawDeployment models.

    namespace, Grafana admin Secret -> kube-prometheus-stack      [after every node is Ready]
        -> PodMonitors, Models dashboard, prometheus-adapter      [after the stack: its CRDs, its Prometheus]
        -> dcgm-exporter (any GPU node)                           [after the stack and the device plugin]
            -> requests/s HPAs                                    [after the adapter and the model]
            -> GPU utilisation HPAs                               [after the adapter, dcgm-exporter and the model]
"""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.monitoring import values as v
from components.monitoring import dcgm
from components.monitoring.autoscaling import adapter_hpa_name, adapter_hpa_spec
from components.monitoring.config import GRAFANA_PASSWORD_KEY, MonitoringConfig
from components.monitoring.dashboard import dashboard_json
from components.monitoring.scrape import API_VERSION, KIND, pod_monitors
from components.problems import PROJECT
from components.serving.config import ServingConfig
from components.serving.context import ClusterHandle, k8s_options
from components.serving.scaling import ADAPTER_HPA, GPU

CHART_TIMEOUT_SECONDS = 900  # images of Prometheus, Grafana and friends on a slow link
DASHBOARD_CONFIGMAP = "kserve-cluster-models-dashboard"


def admin_password() -> pulumi.Output:
    """The Grafana admin password the user set with `pulumi config set --secret`."""
    return pulumi.Config(PROJECT).require_secret(GRAFANA_PASSWORD_KEY)


def grafana_url(address: str, node_port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{node_port}"


class Monitoring(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, monitoring: MonitoringConfig,
                 serving: ServingConfig, model_services: dict[str, pulumi.Resource],
                 password: pulumi.Output, gpu_ready: Optional[pulumi.Resource] = None,
                 opts: Optional[pulumi.ResourceOptions] = None):
        """`gpu_ready`: the GPU layer's device plugin, when the stack has GPU nodes:
        dcgm-exporter is then installed after it."""
        super().__init__("kserve-cluster:monitoring:Monitoring", "monitoring", None, opts)
        repo = k8s.helm.v3.RepositoryOptsArgs(repo=versions.PROMETHEUS_COMMUNITY_CHART_REPO)
        self.namespace = k8s.core.v1.Namespace(
            "monitoring-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(name=v.NAMESPACE),
            opts=k8s_options(self, cluster, depends_on=[cluster.ready]))
        # The chart reads the admin account from this Secret (grafana.admin.existingSecret):
        # the password is in no Helm value, and Pulumi keeps the Secret's data encrypted.
        self.admin_secret = k8s.core.v1.Secret(
            "grafana-admin-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=v.GRAFANA_ADMIN_SECRET, namespace=v.NAMESPACE),
            string_data={v.GRAFANA_USER_KEY: v.GRAFANA_ADMIN_USER,
                         v.GRAFANA_PASSWORD_KEY: pulumi.Output.secret(password)},
            opts=k8s_options(self, cluster, depends_on=[self.namespace]))
        self.stack = k8s.helm.v3.Release(
            "kube-prometheus-stack-chart", name=v.RELEASE, chart="kube-prometheus-stack",
            version=versions.KUBE_PROMETHEUS_STACK_VERSION, repository_opts=repo,
            namespace=v.NAMESPACE, values=v.stack_values(monitoring),
            timeout=CHART_TIMEOUT_SECONDS,
            opts=k8s_options(self, cluster, depends_on=[cluster.ready, self.namespace,
                                                        self.admin_secret]))
        after_stack = [self.stack]
        self.pod_monitors = {
            name: k8s.apiextensions.CustomResource(
                f"podmonitor-{name}", api_version=API_VERSION, kind=KIND,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=v.NAMESPACE),
                spec=spec, opts=k8s_options(self, cluster, depends_on=after_stack))
            for name, spec in pod_monitors(serving).items()
        }
        label, label_value = v.DASHBOARD_LABEL
        self.dashboard = k8s.core.v1.ConfigMap(
            "models-dashboard",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=DASHBOARD_CONFIGMAP, namespace=v.NAMESPACE,
                                                labels={label: label_value}),
            data={"kserve-cluster-models.json": dashboard_json(serving, indent=1)},
            opts=k8s_options(self, cluster, depends_on=after_stack))
        self.adapter = k8s.helm.v3.Release(
            "prometheus-adapter-chart", name=v.ADAPTER_RELEASE, chart="prometheus-adapter",
            version=versions.PROMETHEUS_ADAPTER_VERSION, repository_opts=repo,
            namespace=v.NAMESPACE, values=v.adapter_values(gpu=gpu_ready is not None),
            timeout=CHART_TIMEOUT_SECONDS,
            opts=k8s_options(self, cluster, depends_on=after_stack))
        # GPU metrics: the exporter's ServiceMonitor needs the stack's CRDs, and its
        # pods the nvidia runtime and the GPU nodes the device plugin waited for.
        self.dcgm_exporter = None
        if gpu_ready is not None:
            self.dcgm_exporter = k8s.helm.v3.Release(
                "dcgm-exporter-chart", name=dcgm.RELEASE, chart=versions.DCGM_EXPORTER_CHART,
                version=versions.DCGM_EXPORTER_VERSION,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(
                    repo=versions.DCGM_EXPORTER_CHART_REPO),
                namespace=dcgm.NAMESPACE, values=dcgm.dcgm_exporter_values(),
                timeout=dcgm.CHART_TIMEOUT_SECONDS,
                opts=k8s_options(self, cluster, depends_on=after_stack + [gpu_ready]))
        self.adapter_autoscalers = {}
        for model in serving.models:
            if model.scaling is None or model.scaling.autoscaler != ADAPTER_HPA:
                continue
            metric = model.scaling.effective_metric
            after = [self.adapter] + ([model_services[model.key]]
                                      if model.key in model_services else [])
            if metric == GPU and self.dcgm_exporter is not None:
                after.append(self.dcgm_exporter)
            self.adapter_autoscalers[model.key] = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"hpa-{model.namespace}-{model.name}-{metric}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=adapter_hpa_name(model),
                                                    namespace=model.namespace),
                spec=adapter_hpa_spec(model),
                opts=k8s_options(self, cluster, depends_on=after))
        self.grafana_url = grafana_url(cluster.control_plane_address, monitoring.grafana_node_port)
        self.admin_password = pulumi.Output.secret(password)
        self.register_outputs({"grafanaUrl": self.grafana_url})
