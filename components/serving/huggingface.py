"""`format: huggingface`: KServe's Hugging Face runtime, with its weights from a model
store and no hub at run time (pure).

The pinned KServe chart installs the ClusterServingRuntime `kserve-huggingfaceserver`
(charts/kserve-resources/templates/clusterservingruntimes.yaml; image
kserve/huggingfaceserver at the KServe tag, format `huggingface`, autoSelect,
args `--model_name={{.Name}}`); tests/test_chart_rendering.py renders it with the
values the program passes. Its server (python/huggingfaceserver/huggingfaceserver/
__main__.py at the tag) loads `--model_dir` (default /mnt/models, where KServe puts
the storageUri's files) unless `--model_id` names a hub model, and picks its backend
with `--backend` (auto, huggingface, vllm): `auto` takes vLLM whenever vLLM imports
and supports the model's architecture, whether or not the pod has a GPU. The image
(python/huggingface_server.Dockerfile) installs vLLM, which needs a CUDA GPU: a
model without `resources.gpu` therefore gets `--backend=huggingface` (transformers
on the CPU); a GPU model keeps `auto` (vLLM, or transformers for an architecture
vLLM does not support).

Offline: the model server itself never names the hub for a local directory, but the
libraries it loads with do read the hub's switches: huggingface_hub (constants.py,
HF_HUB_OFFLINE, or TRANSFORMERS_OFFLINE) and transformers (utils/hub.py,
TRANSFORMERS_OFFLINE), at the versions the runtime's poetry.lock holds at the tag.
Both are set, so that a missing file fails at once instead of being fetched.
"""
from __future__ import annotations

from typing import Any, Optional

from components.problems import Problems
from components.serving import openai_protocol

FORMAT = "huggingface"
CLUSTER_RUNTIME = "kserve-huggingfaceserver"
CPU_BACKEND = "--backend=huggingface"
OFFLINE_ENV = (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"))
HUB_SCHEME = "hf://"
CONFIG_FILE = "config.json"  # what AutoConfig.from_pretrained reads from the model path

STORE_FIX = ("download the model once on this machine (`huggingface-cli download ORG/MODEL "
             "--local-dir DIR`), upload DIR into a model store (modelStores[].upload: "
             "{from: DIR, to: PATH}) and give storageUri: pvc://<store>/PATH (docs/gpu.md, "
             "Language models).")


def served_by_cluster_runtime(model: Any) -> bool:
    """The model runs on the chart's Hugging Face runtime (not on a custom one)."""
    return model.format == FORMAT and not model.runtime


def predictor_args(model: Any) -> list[str]:
    """Arguments added to the runtime's own (KServe appends the predictor's)."""
    if not served_by_cluster_runtime(model):
        return []
    return [] if model.gpu else [CPU_BACKEND]


def predictor_env(model: Any) -> list[dict]:
    if not served_by_cluster_runtime(model):
        return []
    return [{"name": name, "value": value} for name, value in OFFLINE_ENV]


def check_storage_uri(problems: Problems, key: str, value: Any) -> bool:
    """A huggingface model's storageUri: refused absent or on the hub (`hf://`), where
    the runtime would reach the Hugging Face Hub at run time. True: checked here, no
    further look needed; False: let the general check look at it."""
    if value is None:
        problems.required(key, "a huggingface model's files come from a model store, not "
                          "from the Hugging Face Hub: " + STORE_FIX)
        return True
    if isinstance(value, str) and value.startswith(HUB_SCHEME):
        problems.add(key, value, "the Hugging Face Hub is not reached at run time here: the "
                     "model's files must be in the cluster before it starts.", STORE_FIX)
        return True
    return False


def openai_endpoints(base_url: str, model: Any) -> Optional[dict]:
    """The OpenAI-compatible URLs at `base_url` (the gateway), and the `model` a request
    names; None for a model the Hugging Face runtime does not serve."""
    if not served_by_cluster_runtime(model):
        return None
    base = base_url.rstrip("/")
    return {"completions": base + openai_protocol.PATHS[openai_protocol.COMPLETIONS],
            "chatCompletions": base + openai_protocol.PATHS[openai_protocol.CHAT],
            "models": base + openai_protocol.MODELS_PATH,
            "model": model.name}
