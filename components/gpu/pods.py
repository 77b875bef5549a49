"""What a pod needs to use GPUs here (pure): the resource, the RuntimeClass, and
where it may run. Used by the device plugin's chart values, the RuntimeClass and
the predictors of GPU models."""
from __future__ import annotations

from components.gpu.config import NODE_LABEL, NODE_TAINT, RESOURCE, RUNTIME_CLASS


def gpu_tolerations() -> list[dict]:
    """A toleration of the GPU nodes' taint (nvidia.com/gpu=present:NoSchedule)."""
    return [{"key": NODE_TAINT["key"], "operator": "Exists", "effect": NODE_TAINT["effect"]}]


def gpu_node_selector() -> dict[str, str]:
    key, value = NODE_LABEL
    return {key: value}


def gpu_resources(gpus: int) -> dict[str, str]:
    """`nvidia.com/gpu: N`, for both requests and limits (extended resources must
    have them equal; the quota counts the request)."""
    return {RESOURCE: str(gpus)}


def predictor_gpu_fields(gpus: int) -> dict:
    """The predictor fields beside its resources: the nvidia runtime (which gives
    the container the driver's libraries and the devices) and the taint's toleration."""
    return {"runtimeClassName": RUNTIME_CLASS, "tolerations": gpu_tolerations()} if gpus else {}
