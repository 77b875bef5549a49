"""The requests/s HPA of a RawDeployment model (pure): what the pinned KServe cannot.

KServe's raw HPA scales on cpu or memory only. A model with `scaling.metric:
rps` in RawDeployment is annotated `serving.kserve.io/autoscalerClass: external`
(KServe then creates no HPA and deletes one named like its own), and gets this
HPA: an Object metric on the model's Service, `istio_requests_per_second`
(prometheus-adapter's rule over the ingress gateway's istio_requests_total),
divided by the replica count (AverageValue), so `target` is requests per second
per replica, as in Knative.
"""
from __future__ import annotations

from components.monitoring.dashboard import RPS_HPA_SUFFIX, predictor
from components.monitoring.values import RPS_METRIC
from components.serving.config import Model

# Knative's requests-per-second-target-default (config-autoscaler, the pinned release),
# so that rps means the same in both modes when no target is given.
DEFAULT_RPS_TARGET = 200


def rps_hpa_name(model: Model) -> str:
    # Not `<model>-predictor`: KServe deletes an HPA of that name when the class is external.
    return predictor(model) + RPS_HPA_SUFFIX


def rps_hpa_spec(model: Model) -> dict:
    scaling = model.scaling
    assert scaling is not None
    low = scaling.min_replicas if scaling.min_replicas is not None else 1
    high = scaling.max_replicas if scaling.max_replicas is not None else low
    target = scaling.target if scaling.target is not None else DEFAULT_RPS_TARGET
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": predictor(model)},
        "minReplicas": low,
        "maxReplicas": high,
        "metrics": [{"type": "Object", "object": {
            "describedObject": {"apiVersion": "v1", "kind": "Service", "name": predictor(model)},
            "metric": {"name": RPS_METRIC},
            "target": {"type": "AverageValue", "averageValue": str(target)},
        }}],
    }
