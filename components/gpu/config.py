"""Stack config of GPU nodes: `nodes[].gpu`, `gpu.driver`, and `models[].resources.gpu`.

Pure Python, checked together with the rest of the stack config, so that every
problem is reported at once before any node is touched. Each problem names the
key, the value and the fix.

    kserve-cluster:nodes:
      - {name: gpu1, address: 10.0.2.31, role: worker, gpu: nvidia}
    kserve-cluster:gpu:
      driver: "580-server"     # an Ubuntu 22.04 server driver branch, or "preinstalled"

How many GPUs a node has is not in the stack file: preflight counts them on the
node (`lspci`), and refuses a model that asks for more than the largest GPU node
has (components/preflight/checks.py), still before any node is changed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from components import versions
from components.problems import Problems, check_mapping, close_match

NVIDIA = "nvidia"
VENDORS = (NVIDIA,)
# Vendors people may write that this project does not support (yet): said so plainly.
UNSUPPORTED_VENDORS = {
    "amd": "AMD GPUs (ROCm) are not supported: this project installs NVIDIA's driver, "
           "container toolkit and device plugin only.",
    "intel": "Intel GPUs are not supported: this project installs NVIDIA's driver, "
             "container toolkit and device plugin only.",
}
PREINSTALLED = "preinstalled"
DEFAULT_DRIVER = "580-server"
GPU_KEYS = {"driver"}

# What GPU nodes carry, and what a GPU model's pod must tolerate and ask for.
RESOURCE = "nvidia.com/gpu"
RUNTIME_CLASS = "nvidia"
NODE_LABEL = ("nvidia.com/gpu.present", "true")
NODE_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
MAX_GPUS_PER_MODEL = 16  # more than any single machine has; a typo guard


@dataclass(frozen=True)
class GpuConfig:
    driver: str = DEFAULT_DRIVER
    nodes: tuple[str, ...] = ()  # names of the nodes with `gpu: nvidia`

    @property
    def enabled(self) -> bool:
        return bool(self.nodes)

    @property
    def installs_driver(self) -> bool:
        return self.driver != PREINSTALLED

    @property
    def driver_packages(self) -> tuple[str, ...]:
        """The Ubuntu packages of the driver branch; none with `preinstalled`."""
        if not self.installs_driver:
            return ()
        return (f"nvidia-driver-{self.driver}", f"nvidia-utils-{self.driver}")


def parse_node_gpu(problems: Problems, key: str, value: Any) -> Optional[str]:
    """`nodes[i].gpu`: "nvidia", or None (no GPU, or after a problem at `key`)."""
    if value is None:
        return None
    if value in VENDORS:
        return value
    if isinstance(value, str) and value.strip().lower() in UNSUPPORTED_VENDORS:
        problems.add(key, value, UNSUPPORTED_VENDORS[value.strip().lower()],
                     f"remove `gpu` from this node (it then joins as an ordinary worker), "
                     f"or use an NVIDIA GPU with gpu: {NVIDIA}.")
        return None
    guess = close_match(value, VENDORS)
    problems.add(key, value, "not a GPU vendor this project supports"
                 + (f"; did you mean {guess!r}?" if guess else "."),
                 f"write gpu: {NVIDIA} for a node with NVIDIA GPUs, or remove the key.")
    return None


def parse_model_gpu(problems: Problems, key: str, value: Any) -> int:
    """`models[i].resources.gpu`: a whole number of GPUs (0 when absent or wrong)."""
    if value is None:
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and not value.is_integer() or \
            isinstance(value, str) and _is_fraction(value):
        problems.add(key, value, "a fraction of a GPU: Kubernetes hands out whole devices "
                     f"({RESOURCE} is a count; sharing one GPU needs time-slicing or MIG, "
                     "which this project does not set up).",
                     "give a whole number of GPUs, e.g. 1.")
        return 0
    if isinstance(value, float):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        problems.add(key, value, "not a number of GPUs.", "give a whole number of GPUs, e.g. 1.")
        return 0
    if not 1 <= value <= MAX_GPUS_PER_MODEL:
        problems.add(key, value, f"outside the range 1-{MAX_GPUS_PER_MODEL}.",
                     "give the whole number of GPUs one model server needs, e.g. 1, or "
                     "remove the key for a CPU-only model.")
        return 0
    return value


def _is_fraction(text: str) -> bool:
    try:
        number = float(text.strip().removesuffix("m"))
    except ValueError:
        return False
    return text.strip().endswith("m") or not number.is_integer()


def _driver(problems: Problems, raw: dict) -> str:
    value = raw.get("driver", DEFAULT_DRIVER)
    if value == PREINSTALLED or value in versions.NVIDIA_DRIVER_BRANCHES:
        return value
    branches = ", ".join(versions.NVIDIA_DRIVER_BRANCHES)
    text = str(value)
    guess = close_match(text if text.endswith("-server") else f"{text}-server",
                        versions.NVIDIA_DRIVER_BRANCHES, cutoff=0.8)
    problems.add("gpu.driver", value,
                 "not an NVIDIA server driver branch that Ubuntu 22.04 ships "
                 f"(checked against {versions.NVIDIA_DRIVER_BRANCHES_PAGE})"
                 + (f"; did you mean {guess!r}?" if guess else "."),
                 f"use one of {branches}, or {PREINSTALLED!r} when the nodes already have "
                 "a driver (preflight then checks it with nvidia-smi).")
    return DEFAULT_DRIVER


def parse_gpu_config(problems: Problems, raw: Any, nodes: Sequence, models: Sequence,
                     model_gpu_keys: Sequence[str] = ()) -> GpuConfig:
    """`gpu` and what the nodes and models say about GPUs.

    `nodes`: parsed nodes (name, role, gpu); `models`: parsed models (gpu);
    `model_gpu_keys`: the config key of each model's `resources.gpu`, for messages.
    """
    section = check_mapping(problems, "gpu", raw, "give {driver: '580-server'}.")
    problems.unknown_keys("gpu", section, GPU_KEYS)
    driver = _driver(problems, section)
    gpu_nodes = [n for n in nodes if getattr(n, "gpu", None)]
    for index, node in enumerate(nodes):
        if node.gpu and node.is_control_plane:
            problems.add(f"nodes[{index}] ({node.name}).gpu", node.gpu,
                         "a GPU on the control plane is not supported: GPU nodes are "
                         "tainted so that only GPU models run there, and the control plane "
                         "must run the cluster's own layers.",
                         "give the GPU machine role: worker, and another machine the "
                         "control plane.")
    workers = [n for n in nodes if not n.is_control_plane]
    if gpu_nodes and workers and all(n.gpu for n in workers):
        problems.add("nodes", [n.name for n in gpu_nodes],
                     "every worker is a GPU node, and GPU nodes are tainted "
                     "(nvidia.com/gpu=present:NoSchedule): Istio, Knative, KServe and CPU "
                     "models would have no node to run on.",
                     "add a worker without `gpu` for the cluster's own layers.")
    if raw is not None and not gpu_nodes:
        problems.warn("gpu", raw, "no node has `gpu: nvidia`, so nothing reads this section.",
                      "add gpu: nvidia to the GPU nodes, or remove the section.")
    wanting = [(i, m) for i, m in enumerate(models) if getattr(m, "gpu", 0)]
    if wanting and not gpu_nodes:
        for i, model in wanting:
            key = model_gpu_keys[i] if i < len(model_gpu_keys) else f"models[{i}].resources.gpu"
            problems.add(key, model.gpu,
                         "the model asks for GPUs, but no node has `gpu: nvidia`: its pods "
                         "would never be scheduled.",
                         "add gpu: nvidia to the GPU worker(s) in `nodes`, or remove "
                         "resources.gpu.")
    return GpuConfig(driver=driver, nodes=tuple(n.name for n in gpu_nodes))


def model_gpus(models: Sequence) -> dict[str, int]:
    """GPUs per predictor pod of each GPU model (`namespace/name`), for preflight."""
    return {m.key: m.gpu for m in models if getattr(m, "gpu", 0)}
