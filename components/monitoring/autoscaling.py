"""The HPAs of RawDeployment models that scale on what the pinned KServe cannot (pure).

KServe's raw HPA scales on cpu or memory only. A model with `scaling.metric:
rps` or `gpu` in RawDeployment is annotated `serving.kserve.io/autoscalerClass:
external` (KServe then creates no HPA and deletes one named like its own), and
gets one of these, on a metric prometheus-adapter serves:
- rps: an Object metric on the model's Service, `istio_requests_per_second`
  (the adapter's rule over the ingress gateway's istio_requests_total), divided
  by the replica count (AverageValue), so `target` is requests per second per
  replica, as in Knative;
- gpu: a Pods metric, `gpu_utilization` (the adapter's rule over dcgm-exporter's
  DCGM_FI_DEV_GPU_UTIL of the GPUs each pod holds), averaged over the pods, so
  `target` is the utilisation in percent per replica.
"""
from __future__ import annotations

from components.monitoring.dashboard import ADAPTER_HPA_SUFFIXES, predictor
from components.monitoring.values import GPU_METRIC, RPS_METRIC
from components.serving.config import Model
from components.serving.scaling import GPU

# Knative's requests-per-second-target-default (config-autoscaler, the pinned release),
# so that rps means the same in both modes when no target is given.
DEFAULT_RPS_TARGET = 200
# The pinned KServe's default utilisation target for its own HPA
# (pkg/constants DefaultCPUUtilization), so that gpu reads like cpu when no target is given.
DEFAULT_GPU_TARGET = 80


def _replicas(model: Model) -> tuple[int, int]:
    scaling = model.scaling
    assert scaling is not None
    low = scaling.min_replicas if scaling.min_replicas is not None else 1
    high = scaling.max_replicas if scaling.max_replicas is not None else low
    return low, high


def adapter_hpa_name(model: Model) -> str:
    # Not `<model>-predictor`: KServe deletes an HPA of that name when the class is external.
    assert model.scaling is not None
    return predictor(model) + ADAPTER_HPA_SUFFIXES[model.scaling.effective_metric]


def _metric(model: Model) -> dict:
    scaling = model.scaling
    assert scaling is not None
    if scaling.effective_metric == GPU:
        target = scaling.target if scaling.target is not None else DEFAULT_GPU_TARGET
        return {"type": "Pods", "pods": {
            "metric": {"name": GPU_METRIC},
            "target": {"type": "AverageValue", "averageValue": str(target)},
        }}
    target = scaling.target if scaling.target is not None else DEFAULT_RPS_TARGET
    return {"type": "Object", "object": {
        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": predictor(model)},
        "metric": {"name": RPS_METRIC},
        "target": {"type": "AverageValue", "averageValue": str(target)},
    }}


def adapter_hpa_spec(model: Model) -> dict:
    low, high = _replicas(model)
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": predictor(model)},
        "minReplicas": low,
        "maxReplicas": high,
        "metrics": [_metric(model)],
    }

