"""The "Models" Grafana dashboard: one row per model of the stack (pure).

Built from the stack config, so each row knows its model's namespace, its
deployment mode, who scales it and whether it has a canary. Every query names
only metrics of `metrics.EXPORTED_METRICS`: `models_dashboard` refuses to
build otherwise.

Where the numbers come from:
- requests/s, errors, latency: the Istio ingress gateway, per destination
  service. A Serverless model's requests reach its Knative revisions
  (`<model>-predictor-00001`, ...) through the gateway's local listener, a
  RawDeployment model's reach the Service `<model>-predictor`: the regex
  `<model>-predictor(-[0-9]+)?` covers both.
- canary share: the same count per revision over the total; the canary is
  the newest revision.
- replicas: desired from Knative's autoscaler (KPA) or from the HPA that
  scales the model (kube-state-metrics); actual = available replicas of the
  model's Deployments (kube-state-metrics).
- GPUs (models with `resources.gpu`): dcgm-exporter's utilisation, memory used
  and power per GPU, labelled with the pod holding it; per pod of the model
  (summed, utilisation averaged, over a pod's GPUs).
"""
from __future__ import annotations

import json
from typing import Optional

from components.monitoring.metrics import unknown_metrics
from components.serving.config import Model, ServingConfig
from components.serving.scaling import (
    ADAPTER_HPA, CONCURRENCY, GPU, KNATIVE_KPA, RPS, default_autoscaler)

UID = "kserve-cluster-models"
TITLE = "Models"
# kube-prometheus-stack's Prometheus datasource (values.yaml grafana.sidecar.datasources.uid).
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RATE_WINDOW = "1m"
PANEL_WIDTH, PANEL_HEIGHT, GRID_WIDTH = 8, 8, 24
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
# Formats served by KServe's Python model server, which exports request_predict_seconds
# (ClusterServingRuntimes of the pinned kserve chart). TensorFlow Serving, Triton and
# TorchServe export other metrics or none as KServe configures them.
PYTHON_SERVER_FORMATS = frozenset({"sklearn", "xgboost", "lightgbm", "pmml", "paddle",
                                   "huggingface"})
SERVER_ERRORS = ',response_code=~"5.."'
# Our own HPAs' names end in these (per metric); KServe's would be `<model>-predictor`.
ADAPTER_HPA_SUFFIXES = {RPS: "-rps", GPU: "-gpu"}


def predictor(model: Model) -> str:
    return f"{model.name}-predictor"


def gateway_selector(model: Model, extra: str = "") -> str:
    return ("{" + f'reporter="source",destination_service_namespace="{model.namespace}",'
            f'destination_service_name=~"{predictor(model)}(-[0-9]+)?"' + extra + "}")


def requests_per_second(model: Model, extra: str = "") -> str:
    return f"sum(rate(istio_requests_total{gateway_selector(model, extra)}[{RATE_WINDOW}]))"


def latency_quantile(model: Model, quantile: float) -> str:
    return (f"histogram_quantile({quantile}, sum by (le) (rate("
            f"istio_request_duration_milliseconds_bucket{gateway_selector(model)}[{RATE_WINDOW}])))")


def revision_share(model: Model) -> str:
    per_revision = (f"sum by (destination_service_name) (rate(istio_requests_total"
                    f"{gateway_selector(model)}[{RATE_WINDOW}]))")
    return f"{per_revision} / ignoring(destination_service_name) group_left {requests_per_second(model)}"


def autoscaler(model: Model, mode: str) -> str:
    return model.scaling.autoscaler if model.scaling else default_autoscaler(mode)


def desired_replicas(model: Model, mode: str) -> str:
    if autoscaler(model, mode) == KNATIVE_KPA:
        return (f'sum(autoscaler_desired_pods{{namespace_name="{model.namespace}",'
                f'configuration_name="{predictor(model)}"}})')
    # KServe's HPA and Knative's HPA class name it after the Deployment's owner; ours end
    # in -rps or -gpu.
    ours = "|".join(ADAPTER_HPA_SUFFIXES[m] for m in sorted(ADAPTER_HPA_SUFFIXES))
    return (f'sum(kube_horizontalpodautoscaler_status_desired_replicas{{namespace="{model.namespace}",'
            f'horizontalpodautoscaler=~"{predictor(model)}(-[0-9]+|{ours})?"}})')


def actual_replicas(model: Model) -> str:
    # Knative names a revision's Deployment `<revision>-deployment`; KServe's raw one `<model>-predictor`.
    return (f'sum(kube_deployment_status_replicas_available{{namespace="{model.namespace}",'
            f'deployment=~"{predictor(model)}(-[0-9]+-deployment)?"}})')


def pod_selector(model: Model) -> str:
    """The model's predictor pods: `<Deployment>-<ReplicaSet hash>-<suffix>`, the
    Deployment being `<model>-predictor` (RawDeployment) or
    `<model>-predictor-<revision>-deployment` (Serverless)."""
    return (f'{{namespace="{model.namespace}",'
            f'pod=~"{predictor(model)}(-[0-9]+-deployment)?-[a-z0-9]+-[a-z0-9]+"}}')


def gpu_panels(model: Model) -> list[dict]:
    """Utilisation, memory used and power of the GPUs the model's pods hold."""
    pods = pod_selector(model)
    return [
        _panel("GPU utilisation", [(f"avg by (pod) (DCGM_FI_DEV_GPU_UTIL{pods})", "{{pod}}")],
               "percent", "Per pod, the mean over its GPUs (dcgm-exporter, DCGM_FI_DEV_GPU_UTIL)."),
        _panel("GPU memory used", [(f"sum by (pod) (DCGM_FI_DEV_FB_USED{pods})", "{{pod}}")],
               "mbytes", "Per pod, framebuffer memory used on its GPUs, in MiB "
               "(dcgm-exporter, DCGM_FI_DEV_FB_USED)."),
        _panel("GPU power", [(f"sum by (pod) (DCGM_FI_DEV_POWER_USAGE{pods})", "{{pod}}")],
               "watt", "Per pod, the power draw of its GPUs, in W (dcgm-exporter, "
               "DCGM_FI_DEV_POWER_USAGE)."),
    ]


def _target(expr: str, legend: str, ref: str) -> dict:
    return {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
            "range": True}


def _panel(title: str, targets: list[tuple[str, str]], unit: str,
           description: str = "") -> dict:
    return {
        "type": "timeseries", "title": title, "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "none"}},
        "targets": [_target(expr, legend, chr(ord("A") + i))
                    for i, (expr, legend) in enumerate(targets)],
    }


def model_panels(model: Model, mode: str) -> list[dict]:
    """The panels of one model's row, in order."""
    who = autoscaler(model, mode)
    panels = [
        _panel("Requests/s", [(requests_per_second(model), "requests/s")], "reqps",
               "All requests the ingress gateway sent to the model's revisions or Service."),
        _panel("Error rate", [(requests_per_second(model, SERVER_ERRORS) + " / "
                               + requests_per_second(model), "5xx share")], "percentunit",
               "Share of answers with a 5xx status."),
        _panel("Latency", [(latency_quantile(model, q), name) for name, q in QUANTILES], "ms",
               "Gateway-measured latency (cold starts included)."),
        _panel("Replicas", [(desired_replicas(model, mode), "desired"),
                            (actual_replicas(model), "actual (available)")], "short",
               "Desired by " + {KNATIVE_KPA: "Knative's autoscaler",
                                ADAPTER_HPA: "the GPU utilisation HPA" if model.scaling
                                and model.scaling.effective_metric == GPU
                                else "the requests/s HPA"}.get(who, "the HPA")
               + "; actual = available pods of the model's Deployments."),
    ]
    if model.canary is not None:
        panels.append(_panel("Traffic share per revision", [(revision_share(model),
                                                            "{{destination_service_name}}")],
                             "percentunit", "The canary is the newest revision."))
    if who == KNATIVE_KPA:
        metric = model.scaling.effective_metric if model.scaling else CONCURRENCY
        base = f'{{namespace_name="{model.namespace}",configuration_name="{predictor(model)}"}}'
        if metric == RPS:
            pair = (f"avg(autoscaler_stable_requests_per_second{base})",
                    f"max(autoscaler_target_requests_per_second{base})", "req/s")
        else:
            pair = (f"avg(autoscaler_stable_request_concurrency{base})",
                    f"max(autoscaler_target_concurrency_per_pod{base})", "in flight")
        panels.append(_panel(f"Autoscaler input ({metric} per pod)",
                             [(pair[0], f"observed {pair[2]}"), (pair[1], "target")], "short",
                             "What Knative's autoscaler sees over its stable window, and its target."))
    if model.format in PYTHON_SERVER_FORMATS and not model.runtime:
        panels.append(_panel("Model server predict p95", [(
            f"histogram_quantile(0.95, sum by (le) (rate(request_predict_seconds_bucket"
            f'{{namespace="{model.namespace}",model_name="{model.name}"}}[{RATE_WINDOW}])))',
            "predict p95")], "s", "KServe's Python server: time in predict()."))
    if model.gpu:
        panels += gpu_panels(model)
    return panels


def models_dashboard(serving: ServingConfig) -> dict:
    """The dashboard JSON (as Grafana's provisioning reads it)."""
    panels: list[dict] = []
    y = 0
    for model in serving.models:
        panels.append({"type": "row", "title": f"{model.key}", "collapsed": False,
                       "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "panels": []})
        y += 1
        row = model_panels(model, serving.deployment_mode)
        per_line = GRID_WIDTH // PANEL_WIDTH
        for i, panel in enumerate(row):
            panel["gridPos"] = {"h": PANEL_HEIGHT, "w": PANEL_WIDTH,
                                "x": (i % per_line) * PANEL_WIDTH,
                                "y": y + (i // per_line) * PANEL_HEIGHT}
            panels.append(panel)
        y += -(-len(row) // per_line) * PANEL_HEIGHT
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    unknown = sorted({name for p in panels for t in p.get("targets", [])
                      for name in unknown_metrics(t["expr"])})
    if unknown:
        raise ValueError(f"dashboard queries name metrics no pinned component exports: {unknown}")
    return {
        "uid": UID, "title": TITLE, "tags": ["kserve-cluster"], "editable": True,
        "schemaVersion": 39, "version": 1, "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"}, "refresh": "10s",
        "templating": {"list": []}, "annotations": {"list": []},
        "panels": panels,
    }


def dashboard_json(serving: ServingConfig, indent: Optional[int] = None) -> str:
    return json.dumps(models_dashboard(serving), indent=indent, sort_keys=True)
