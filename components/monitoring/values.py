"""Helm values of kube-prometheus-stack and prometheus-adapter, sized for a lab (pure).

Every key was checked by hand against the chart's values.yaml at the pinned tag
(prometheus-community/helm-charts kube-prometheus-stack-<pin>, its subcharts
grafana 12.11.1 from grafana-community/helm-charts, kube-state-metrics 8.4.0 and
prometheus-node-exporter 4.56.1; prometheus-adapter-<pin>); the one key that is
read by a template but not listed in values.yaml is named where it is used.
tests/test_monitoring_charts.py repeats the check against the chart sources
when ../shared/upstream/charts has them.
"""
from __future__ import annotations

import re

from components.monitoring.config import MonitoringConfig
from components.namespaces import MONITORING_NAMESPACE

NAMESPACE = MONITORING_NAMESPACE
RELEASE = "kube-prometheus-stack"
# The chart's fullname is the release name when it contains the chart's name:
# the Prometheus Service is `<fullname>-prometheus` (templates/prometheus/service.yaml).
PROMETHEUS_SERVICE = f"{RELEASE}-prometheus"
PROMETHEUS_PORT = 9090
ADAPTER_RELEASE = "prometheus-adapter"
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER = "admin"
GRAFANA_USER_KEY, GRAFANA_PASSWORD_KEY = "admin-user", "admin-password"  # the chart's defaults
# grafana.sidecar.dashboards.label / labelValue in kube-prometheus-stack's values.yaml:
# the Grafana sidecar loads ConfigMaps with this label, in every namespace (searchNamespace: ALL).
DASHBOARD_LABEL = ("grafana_dashboard", "1")
# 15 s instead of Prometheus' 30 s default: autoscaling moves within seconds.
SCRAPE_INTERVAL = "15s"
# The rate window of the adapter's requests/s metric: long enough for 4 scrapes.
ADAPTER_RATE_WINDOW = "1m"
RPS_METRIC = "istio_requests_per_second"
# GPU utilisation per pod (percent), for the HPA of a model with `scaling.metric: gpu`:
# dcgm-exporter's DCGM_FI_DEV_GPU_UTIL, averaged over the pod's GPUs and over this
# window (the exporter reads DCGM every 30 s: two readings).
GPU_METRIC = "gpu_utilization"
GPU_AVERAGE_WINDOW = "1m"


def _resources(cpu: str, memory: str, memory_limit: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


# Small requests for a lab; memory limits so one runaway pod cannot starve a node.
RESOURCES = {
    "prometheus": _resources("100m", "400Mi", "1Gi"),
    "operator": _resources("50m", "64Mi", "256Mi"),
    "config-reloader": _resources("10m", "25Mi", "64Mi"),
    "grafana": _resources("50m", "160Mi", "512Mi"),
    "grafana-sidecar": _resources("10m", "64Mi", "128Mi"),  # each of its two sidecars
    "kube-state-metrics": _resources("10m", "64Mi", "256Mi"),
    "node-exporter": _resources("10m", "32Mi", "64Mi"),     # one per node
    "prometheus-adapter": _resources("50m", "64Mi", "256Mi"),
}
PER_NODE = ("node-exporter",)
GRAFANA_SIDECARS = 2  # dashboards and datasources (kube-prometheus-stack enables both)


def stack_values(monitoring: MonitoringConfig) -> dict:
    """kube-prometheus-stack: Prometheus, Grafana on a node port, kube-state-metrics,
    node-exporter; no Alertmanager (a lab has no receiver for it)."""
    return {
        "alertmanager": {"enabled": False},
        # kubeadm binds these to 127.0.0.1: their targets would be down for good
        # and their TargetDown alerts firing.
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "prometheus": {"prometheusSpec": {
            "retention": monitoring.retention,
            "scrapeInterval": SCRAPE_INTERVAL,
            "resources": RESOURCES["prometheus"],
            # Pick up this project's PodMonitors (and users' own) without the release label.
            "podMonitorSelectorNilUsesHelmValues": False,
            "serviceMonitorSelectorNilUsesHelmValues": False,
        }},
        "prometheusOperator": {
            "resources": RESOURCES["operator"],
            "prometheusConfigReloader": {"resources": RESOURCES["config-reloader"]},
        },
        "grafana": {
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": GRAFANA_USER_KEY,
                      "passwordKey": GRAFANA_PASSWORD_KEY},
            # service.nodePort is read by the grafana chart's templates/service.yaml
            # (type NodePort) though its values.yaml does not list it.
            "service": {"type": "NodePort", "nodePort": monitoring.grafana_node_port},
            "resources": RESOURCES["grafana"],
            # No Alertmanager: no datasource pointing at it either.
            "sidecar": {"resources": RESOURCES["grafana-sidecar"],
                        "datasources": {"alertmanager": {"enabled": False}}},
            # The chart's test pod (image bats) only runs under `helm test`.
            "testFramework": {"enabled": False},
        },
        "kube-state-metrics": {"resources": RESOURCES["kube-state-metrics"]},
        "prometheus-node-exporter": {"resources": RESOURCES["node-exporter"]},
    }


def gpu_utilization_rule() -> dict:
    """prometheus-adapter rule: `gpu_utilization` per pod, from the series
    dcgm-exporter labels with the pod holding the GPU (`namespace`, `pod`: its
    ServiceMonitor honours them, components/monitoring/dcgm.py)."""
    return {
        "seriesQuery": 'DCGM_FI_DEV_GPU_UTIL{namespace!="",pod!=""}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"},
                                    "pod": {"resource": "pod"}}},
        "name": {"matches": "^DCGM_FI_DEV_GPU_UTIL$", "as": GPU_METRIC},
        "metricsQuery": "avg(avg_over_time(<<.Series>>{<<.LabelMatchers>>}"
                        f"[{GPU_AVERAGE_WINDOW}])) by (<<.GroupBy>>)",
    }


def adapter_values(gpu: bool = False) -> dict:
    """prometheus-adapter: custom metric `istio_requests_per_second` per Service
    (for the requests/s HPA of RawDeployment models), with `gpu` (dcgm-exporter
    installed) `gpu_utilization` per pod, and the resource metrics API
    (metrics.k8s.io, for every cpu/memory HPA and `kubectl top`)."""
    window = "3m"
    overrides = {"node": {"resource": "node"}, "namespace": {"resource": "namespace"},
                 "pod": {"resource": "pod"}}
    return {
        "prometheus": {"url": f"http://{PROMETHEUS_SERVICE}.{NAMESPACE}.svc",
                       "port": PROMETHEUS_PORT},
        "resources": RESOURCES["prometheus-adapter"],
        "rules": {
            "default": False,
            "custom": [{
                "seriesQuery": 'istio_requests_total{reporter="source",'
                               'destination_service_namespace!="",destination_service_name!=""}',
                "resources": {"overrides": {
                    "destination_service_namespace": {"resource": "namespace"},
                    "destination_service_name": {"resource": "service"}}},
                "name": {"matches": "^istio_requests_total$", "as": RPS_METRIC},
                "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}"
                                f"[{ADAPTER_RATE_WINDOW}])) by (<<.GroupBy>>)",
            }] + ([gpu_utilization_rule()] if gpu else []),
            "resource": {
                "cpu": {
                    "containerQuery": "sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total"
                                      '{container!="",<<.LabelMatchers>>}[' + window + "]))",
                    "nodeQuery": "sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total"
                                 '{id="/",<<.LabelMatchers>>}[' + window + "]))",
                    "resources": {"overrides": overrides},
                    "containerLabel": "container",
                },
                "memory": {
                    "containerQuery": "sum by (<<.GroupBy>>) (container_memory_working_set_bytes"
                                      '{container!="",<<.LabelMatchers>>})',
                    "nodeQuery": "sum by (<<.GroupBy>>) (container_memory_working_set_bytes"
                                 '{id="/",<<.LabelMatchers>>})',
                    "resources": {"overrides": overrides},
                    "containerLabel": "container",
                },
                "window": window,
            },
        },
    }


def adapter_queries(values: dict) -> list[str]:
    """Every PromQL text in the adapter's rules (for the exported-metrics check)."""
    rules = values["rules"]
    queries = [q for rule in rules["custom"] for q in (rule["seriesQuery"], rule["metricsQuery"])]
    for resource in ("cpu", "memory"):
        queries += [rules["resource"][resource]["containerQuery"],
                    rules["resource"][resource]["nodeQuery"]]
    return queries


_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}


def memory_mb(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", quantity)
    if not match:
        raise ValueError(f"not a binary memory quantity: {quantity}")
    return int(int(match.group(1)) * _UNITS[match.group(2)])


def requested_memory_mb(node_count: int) -> int:
    """What the monitoring stack asks the scheduler for, in MiB, on `node_count` nodes."""
    total = 0
    for name, resources in RESOURCES.items():
        each = memory_mb(resources["requests"]["memory"])
        count = node_count if name in PER_NODE else GRAFANA_SIDECARS if name == "grafana-sidecar" else 1
        total += each * count
    return total


def monitoring_memory_mb(config) -> int:
    """What preflight checks the nodes for (a StackConfig): 0 when monitoring is off."""
    return requested_memory_mb(len(config.nodes)) if config.monitoring.enabled else 0
