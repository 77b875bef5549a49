"""What Prometheus scrapes besides kube-prometheus-stack's defaults (pure).

PodMonitors in the monitoring namespace (Prometheus selects every PodMonitor:
`podMonitorSelectorNilUsesHelmValues: false`). The chart itself already scrapes
the nodes (node-exporter), the kubelets and cAdvisor, and kube-state-metrics.
Port names and labels are the pinned components' own:
- Istio ingress gateway: pods `istio: ingressgateway` (gateway chart, release
  istio-ingressgateway), container port `http-envoy-prom` 15090,
  /stats/prometheus (istio manifests/charts/gateway/templates/deployment.yaml);
- Knative autoscaler and activator: pods `app: autoscaler|activator` in
  knative-serving, port `metrics` 9090 (knative/serving
  config/core/deployments/{autoscaler,activator}.yaml);
- Knative queue-proxy: every revision pod (label `serving.knative.dev/revision`),
  port `http-usermetric` 9091 (pkg/apis/serving/v1/revision_helpers.go);
- KServe's Python model servers: /metrics on the HTTP port 8080 (kserve
  python/kserve/kserve/protocol/rest/server.py; runtimes pass --http_port=8080).
  TensorFlow Serving as KServe runs it (no --monitoring_config_file) exports none.
"""
from __future__ import annotations

from components.monitoring.dashboard import PYTHON_SERVER_FORMATS
from components.serving.config import ServingConfig

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PodMonitor"
ISTIO_NAMESPACE = "istio-system"
KNATIVE_NAMESPACE = "knative-serving"


def pod_monitors(serving: ServingConfig) -> dict[str, dict]:
    """PodMonitor specs by name."""
    monitors = {
        "istio-ingressgateway": {
            "namespaceSelector": {"matchNames": [ISTIO_NAMESPACE]},
            "selector": {"matchLabels": {"istio": "ingressgateway"}},
            "podMetricsEndpoints": [{"port": "http-envoy-prom", "path": "/stats/prometheus"}],
        },
    }
    namespaces = sorted({m.namespace for m in serving.models})
    if serving.serverless:
        monitors["knative-autoscaler-activator"] = {
            "namespaceSelector": {"matchNames": [KNATIVE_NAMESPACE]},
            "selector": {"matchExpressions": [
                {"key": "app", "operator": "In", "values": ["activator", "autoscaler"]}]},
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics"}],
        }
        if namespaces:
            monitors["knative-queue-proxy"] = {
                "namespaceSelector": {"matchNames": namespaces},
                "selector": {"matchExpressions": [
                    {"key": "serving.knative.dev/revision", "operator": "Exists"}]},
                "podMetricsEndpoints": [{"port": "http-usermetric", "path": "/metrics"}],
            }
    python = [m for m in serving.models if m.format in PYTHON_SERVER_FORMATS and not m.runtime]
    if python:
        monitors["kserve-model-servers"] = {
            "namespaceSelector": {"matchNames": sorted({m.namespace for m in python})},
            "selector": {"matchExpressions": [
                {"key": "serving.kserve.io/inferenceservice", "operator": "In",
                 "values": sorted({m.name for m in python})}]},
            "podMetricsEndpoints": [{"portNumber": 8080, "path": "/metrics"}],
        }
    return monitors
