"""Every metric a query of this project names, with where upstream defines it.

The dashboard and the prometheus-adapter rules may only name metrics listed
here (a test parses every query and checks it). Each entry says which pinned
component exports it and the file of the pinned tag that defines it. Names as
Prometheus stores them: histograms gain `_bucket`, and Knative's OpenCensus
exporter prefixes the component (`autoscaler_`, `activator_`, `revision_` for
queue-proxy, set in knative/pkg metrics/prometheus_exporter.go:
`prom.Options{Namespace: component}`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from components import versions


@dataclass(frozen=True)
class Source:
    component: str   # what exports it, and where Prometheus scrapes it
    repo: str
    tag: str
    path: str


ISTIO = Source("Istio ingress gateway (Envoy's istio_stats filter; port http-envoy-prom)",
               "istio/proxy", versions.ISTIO_VERSION, "source/extensions/filters/http/istio_stats/istio_stats.cc")
KNATIVE_AUTOSCALER = Source("Knative autoscaler (port metrics 9090)", "knative/serving",
                            versions.KNATIVE_SERVING_VERSION, "pkg/autoscaler/scaling/metrics.go")
KNATIVE_KPA = Source("Knative autoscaler, KPA reconciler (port metrics 9090)", "knative/serving",
                     versions.KNATIVE_SERVING_VERSION, "pkg/reconciler/autoscaling/kpa/metrics.go")
KNATIVE_QUEUE = Source("Knative queue-proxy (component 'revision', pkg/queue/sharedmain/main.go; "
                       "port http-usermetric 9091)", "knative/serving", versions.KNATIVE_SERVING_VERSION,
                       "pkg/queue/request_metric.go")
KNATIVE_ACTIVATOR = Source("Knative activator (port metrics 9090)", "knative/serving",
                           versions.KNATIVE_SERVING_VERSION, "pkg/activator/handler/metrics.go")
KSM_DEPLOYMENT = Source("kube-state-metrics v2.20.0 (kube-prometheus-stack's chart 8.4.0)",
                        "kubernetes/kube-state-metrics", "v2.20.0", "internal/store/deployment.go")
KSM_HPA = Source("kube-state-metrics v2.20.0 (kube-prometheus-stack's chart 8.4.0)",
                 "kubernetes/kube-state-metrics", "v2.20.0",
                 "internal/store/horizontalpodautoscaler.go")
KSERVE_PYTHON = Source("KServe's Python model server (sklearn, xgboost, lightgbm, pmml, paddle, "
                       "huggingface runtimes; /metrics on the HTTP port 8080)", "kserve/kserve",
                       versions.KSERVE_VERSION, "python/kserve/kserve/metrics.py")
DCGM = Source("NVIDIA dcgm-exporter (ServiceMonitor dcgm-exporter, port metrics 9400; on GPU "
              "nodes with monitoring on). Fields of the chart's default counters "
              "(deployment/templates/metrics-configmap.yaml, the same as this file); each "
              "series carries the pod holding the GPU as pod/namespace/container "
              "(internal/pkg/transformation/const.go, kubernetes.go)", "NVIDIA/dcgm-exporter",
              versions.DCGM_EXPORTER_TAG, "etc/default-counters.csv")
CADVISOR = Source("kubelet's cAdvisor endpoint (kube-prometheus-stack's kubelet ServiceMonitor, "
                  "/metrics/cadvisor); names read at cAdvisor v0.49.1, the exact version the "
                  "1.31 kubelet vendors not checked", "google/cadvisor", "v0.49.1",
                  "metrics/prometheus.go")

EXPORTED_METRICS: dict[str, Source] = {
    # Requests, status codes and latency per destination service, at the gateway.
    "istio_requests_total": ISTIO,
    "istio_request_duration_milliseconds_bucket": ISTIO,
    # Knative's autoscaler: what it wants and what it sees (Serverless, KPA class).
    "autoscaler_desired_pods": KNATIVE_AUTOSCALER,
    "autoscaler_stable_request_concurrency": KNATIVE_AUTOSCALER,
    "autoscaler_target_concurrency_per_pod": KNATIVE_AUTOSCALER,
    "autoscaler_stable_requests_per_second": KNATIVE_AUTOSCALER,
    "autoscaler_target_requests_per_second": KNATIVE_AUTOSCALER,
    "autoscaler_panic_mode": KNATIVE_AUTOSCALER,
    "autoscaler_actual_pods": KNATIVE_KPA,
    # queue-proxy and activator request counts (scraped; for ad-hoc queries).
    "revision_request_count": KNATIVE_QUEUE,
    "revision_request_latencies_bucket": KNATIVE_QUEUE,
    "revision_app_request_count": KNATIVE_QUEUE,
    "activator_request_count": KNATIVE_ACTIVATOR,
    "activator_request_concurrency": KNATIVE_ACTIVATOR,
    # Replicas of any Deployment, and what an HPA wants.
    "kube_deployment_spec_replicas": KSM_DEPLOYMENT,
    "kube_deployment_status_replicas_available": KSM_DEPLOYMENT,
    "kube_horizontalpodautoscaler_status_desired_replicas": KSM_HPA,
    "kube_horizontalpodautoscaler_status_current_replicas": KSM_HPA,
    # The model server's own view of predict latency.
    "request_predict_seconds_bucket": KSERVE_PYTHON,
    # GPUs, per pod that holds one: utilisation (%), framebuffer memory used (MiB),
    # power draw (W). Utilisation also feeds the adapter's gpu_utilization.
    "DCGM_FI_DEV_GPU_UTIL": DCGM,
    "DCGM_FI_DEV_FB_USED": DCGM,
    "DCGM_FI_DEV_POWER_USAGE": DCGM,
    # What prometheus-adapter's resource metrics (metrics.k8s.io) are computed from.
    "container_cpu_usage_seconds_total": CADVISOR,
    "container_memory_working_set_bytes": CADVISOR,
}


def source_of(metric: str) -> Source:
    return EXPORTED_METRICS[metric]


# --- which metrics a PromQL expression names ---------------------------------

# Words of PromQL that are not metric names (functions, aggregations, keywords).
PROMQL_WORDS = frozenset({
    "sum", "avg", "max", "min", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "clamp_min", "clamp_max", "vector", "scalar", "abs", "offset", "bool", "avg_over_time",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TEMPLATE = re.compile(r"<<\.\w+>>")  # prometheus-adapter's <<.Series>>, <<.LabelMatchers>>
_IDENT = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: label matchers, label lists,
    strings, ranges, numbers and function names taken out."""
    text = _STRING.sub(" ", expr)
    text = _TEMPLATE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENT.findall(text) if name not in PROMQL_WORDS}


def unknown_metrics(expr: str) -> set[str]:
    return metric_names(expr) - set(EXPORTED_METRICS)
