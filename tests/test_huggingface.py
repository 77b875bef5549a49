"""`format: huggingface`: KServe's Hugging Face runtime as the pinned chart installs it,
the model's files from a model store and never from the hub, the predictor the
program makes (checked against KServe's CRD), the OpenAI URLs in the `models` output
and the plan, and the example in stacks/Pulumi.gpu-example.yaml."""
import copy

import pytest

from components import upstream, versions
from components.offline import charts
from components.offline.program import evaluate
from components.plan.outputs import settle
from components.serving import huggingface
from components.serving.config import CLUSTER_RUNTIME_FORMATS
from components.serving.models import FILES_REVISION_ENV, inference_service_spec
from components.stack_config import ConfigError, parse_stack_config
from components.stack_file import stack_file_config
from upstream_needs import need

NODES = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
         {"name": "worker1", "address": "10.0.2.22", "role": "worker"},
         {"name": "gpu1", "address": "10.0.2.31", "role": "worker", "gpu": "nvidia"}]
STORE = {"name": "llm", "namespace": "kserve-test", "size": "4Gi"}
LLM = {"name": "tinyllama", "namespace": "kserve-test", "format": "huggingface",
       "storageUri": "pvc://llm/tinyllama"}


def config(model=None, store=None, **extra):
    return {"nodes": copy.deepcopy(NODES), "modelStores": [copy.deepcopy(store or STORE)],
            "models": [copy.deepcopy(model or LLM)], **extra}


def parse(raw):
    return parse_stack_config(raw, has_secret_private_key=True)


def problems(raw):
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return caught.value.problems


def only(raw):
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


# --- the model's files: a model store, never the hub --------------------------------

def test_a_huggingface_model_from_the_hub_is_refused_with_the_way_to_a_store():
    problem = only(config(dict(LLM, storageUri="hf://TinyLlama/TinyLlama-1.1B-Chat-v1.0")))
    assert problem.startswith("kserve-cluster:models[0] (tinyllama).storageUri = "
                              "'hf://TinyLlama/TinyLlama-1.1B-Chat-v1.0': the Hugging Face Hub "
                              "is not reached at run time")
    assert "huggingface-cli download" in problem and "pvc://<store>/PATH" in problem


def test_a_huggingface_model_without_storage_uri_is_refused_naming_the_store_way():
    model = {k: v for k, v in LLM.items() if k != "storageUri"}
    problem = only(config(model))
    assert problem.startswith("kserve-cluster:models[0] (tinyllama).storageUri")
    assert "not from the Hugging Face Hub" in problem and "modelStores[].upload" in problem


def test_a_canary_from_the_hub_is_refused_too():
    model = dict(LLM, canary={"storageUri": "hf://org/model", "trafficPercent": 10})
    assert only(config(model)).startswith(
        "kserve-cluster:models[0] (tinyllama).canary.storageUri = 'hf://org/model'")


def test_other_stores_kserve_fetches_are_accepted():
    for uri in ("pvc://llm/tinyllama", "s3://bucket/tinyllama", "gs://bucket/tinyllama"):
        assert parse(config(dict(LLM, storageUri=uri))).serving.models[0].storage_uri == uri


def test_the_store_must_be_declared():
    problem = only(config(dict(LLM, storageUri="pvc://other/tinyllama")))
    assert "names the store 'other', which modelStores does not declare" in problem


def test_a_gpu_model_on_a_local_path_store_with_uploads_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    store = dict(STORE, upload=[{"from": str(tmp_path), "to": "tinyllama"}])
    model = dict(LLM, resources={"gpu": 1})
    problem = only(config(model, store))
    assert problem.startswith("kserve-cluster:models[0] (tinyllama).storageUri = "
                              "'pvc://llm/tinyllama': a GPU model reading the local-path store")
    assert "storage.nfs" in problem
    # On NFS (ReadWriteMany) it is fine; so is a CPU model on local-path.
    assert parse(config(model, store, storage={"nfs": {"server": "10.0.2.5",
                                                       "path": "/exports"}}))
    assert parse(config(LLM, store))


def test_uploaded_files_without_config_json_are_a_warning(tmp_path):
    (tmp_path / ".gitignore").write_text("*\n")
    store = dict(STORE, upload=[{"from": str(tmp_path), "to": "tinyllama"}])
    parsed = parse(config(LLM, store))
    [warning] = [w for w in parsed.warnings if "config.json" in w]
    assert warning.startswith("kserve-cluster:models[0] (tinyllama).storageUri")
    assert "huggingface-cli download" in warning
    (tmp_path / "config.json").write_text("{}")
    assert not [w for w in parse(config(LLM, store)).warnings if "config.json" in w]


# --- the predictor ---------------------------------------------------------------------

def predictor(model_keys, files_revision=""):
    [model] = parse(config(dict(LLM, **model_keys))).serving.models
    return inference_service_spec(model, rollout=True, files_revision=files_revision)["predictor"]


def test_a_cpu_model_gets_the_transformers_backend_and_stays_offline():
    spec = predictor({}, files_revision="abc")
    assert spec["model"]["args"] == ["--backend=huggingface"]
    assert spec["model"]["env"] == [{"name": "HF_HUB_OFFLINE", "value": "1"},
                                    {"name": "TRANSFORMERS_OFFLINE", "value": "1"},
                                    {"name": FILES_REVISION_ENV, "value": "abc"}]
    assert spec["model"]["modelFormat"] == {"name": "huggingface"}
    assert "runtime" not in spec["model"]  # KServe picks kserve-huggingfaceserver by format


def test_a_gpu_model_keeps_the_runtimes_automatic_backend():
    spec = predictor({"resources": {"cpu": "2", "memory": "8Gi", "gpu": 1},
                      "storageUri": "gs://bucket/tinyllama"})
    assert "args" not in spec["model"]  # auto: vLLM for the architectures it supports
    assert {e["name"] for e in spec["model"]["env"]} == {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}
    assert spec["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["runtimeClassName"] == "nvidia"


def test_a_custom_runtime_gets_nothing_of_the_cluster_runtime():
    raw = config(dict(LLM, runtime="my-llm"), runtimes=[{
        "name": "my-llm", "namespace": "kserve-test", "image": "example/llm:1",
        "modelFormats": [{"name": "huggingface"}]}])
    [model] = parse(raw).serving.models
    spec = inference_service_spec(model, rollout=False)["predictor"]["model"]
    assert "args" not in spec and "env" not in spec
    assert huggingface.openai_endpoints("http://x:1", model) is None


def test_the_predictors_validate_against_the_pinned_crd():
    from test_serving_resources import strict_spec_schema  # skipped there without the CRDs
    need(upstream.kserve_crds_dir())
    validator = strict_spec_schema("inferenceservices.yaml", "v1beta1")
    for keys in ({}, {"resources": {"gpu": 2}, "storageUri": "s3://b/m"}):
        [model] = parse(config(dict(LLM, **keys))).serving.models
        for rollout in (False, True):
            validator.validate(inference_service_spec(model, rollout, files_revision="abc"))


# --- the runtime the pinned chart installs ------------------------------------------------

@pytest.fixture(scope="module")
def kserve_chart_objects():
    from components.offline.releases import declared_releases
    [release] = [r for r in declared_releases(["lab"]) if r.chart.chart == versions.KSERVE_CHART]
    source, helm = need(upstream.chart_source(release.chart)), need(upstream.helm())
    return charts.render(helm, release, source, versions.KUBERNETES_VERSION)


def test_the_chart_installs_the_hugging_face_runtime_with_the_values_passed(kserve_chart_objects):
    [runtime] = charts.find(kserve_chart_objects, "ClusterServingRuntime",
                            huggingface.CLUSTER_RUNTIME)
    spec = runtime["spec"]
    assert {"name": "huggingface", "version": "1", "autoSelect": True, "priority": 1} in \
        spec["supportedModelFormats"]
    [container] = spec["containers"]
    assert container["image"] == f"kserve/huggingfaceserver:{versions.KSERVE_VERSION}"
    # The model's name (the OpenAI requests' `model`) is the InferenceService's.
    assert container["args"] == ["--model_name={{.Name}}"]


def test_every_cluster_runtime_format_is_served_by_a_runtime_the_chart_installs(
        kserve_chart_objects):
    served = {f["name"] for r in kserve_chart_objects if r.get("kind") == "ClusterServingRuntime"
              for f in r["spec"]["supportedModelFormats"] if f.get("autoSelect")}
    assert CLUSTER_RUNTIME_FORMATS <= served, CLUSTER_RUNTIME_FORMATS - served


# --- the models output, the plan and the example ------------------------------------------

@pytest.fixture(scope="module")
def gpu_example():
    return evaluate(stack_file_config("gpu-example"))


def test_the_models_output_gives_the_openai_urls_of_huggingface_models_only(gpu_example):
    models, _ = settle(gpu_example.outputs["models"])
    assert models["kserve-test/tinyllama"]["openai"] == {
        "completions": "http://10.0.2.21:31903/openai/v1/completions",
        "chatCompletions": "http://10.0.2.21:31903/openai/v1/chat/completions",
        "models": "http://10.0.2.21:31903/openai/v1/models",
        "model": "tinyllama"}
    assert "openai" not in models["kserve-test/tf-flower"]
    assert "openai" not in models["kserve-test/cifar10-gpu"]


def test_the_example_model_waits_for_its_upload_and_the_device_plugin(gpu_example):
    from components.offline.graph import Graph
    graph = Graph(gpu_example)
    for name in ("upload-kserve-test-llm-store/tinyllama", "nvidia-device-plugin-chart"):
        assert graph.waits_for("isvc-kserve-test-tinyllama", name), name
    spec = gpu_example.named("isvc-kserve-test-tinyllama").inputs["spec"]["predictor"]
    assert spec["model"]["storageUri"] == "pvc://llm-store/tinyllama"
    assert spec["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_the_plan_shows_the_openai_urls_and_the_empty_directory():
    from tests.test_plan import run_plan
    result = run_plan("gpu-example")
    assert result.returncode == 0, result.stderr
    assert "openai:    http://10.0.2.21:31903/openai/v1/completions" in result.stdout
    assert "http://10.0.2.21:31903/openai/v1/chat/completions (model 'tinyllama')" in result.stdout
    # Until the user downloads a model into examples/huggingface/model, the plan says so.
    assert "no config.json" in result.stdout + result.stderr


def test_the_plan_json_lists_openai_per_model():
    from components.plan.build import plan_stack
    from components.plan.text import to_json
    plan = to_json(plan_stack("gpu-example"))
    [llm] = [e for e in plan["endpoints"] if e["model"] == "kserve-test/tinyllama"]
    assert llm["openai"]["model"] == "tinyllama"
    [flower] = [e for e in plan["endpoints"] if e["model"] == "kserve-test/tf-flower"]
    assert flower["openai"] is None
