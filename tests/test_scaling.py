"""models[].scaling: one test per rule, and what each setting becomes on the InferenceService."""
import pytest

from components.problems import ConfigError
from components.serving import scaling as sc
from components.serving.config import RAW_DEPLOYMENT, SERVERLESS
from components.serving.models import inference_service_spec, model_annotations
from components.stack_config import parse_stack_config

NODES = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
         {"name": "worker1", "address": "10.0.2.22", "role": "worker"}]
MONITORING = {"monitoring": {"enabled": True}, "grafanaAdminPassword": "a-long-secret"}
SECRETS = frozenset({"grafanaAdminPassword"})


def model(scaling=None, **extra):
    item = {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
            "storageUri": "gs://kfserving-examples/models/tensorflow/flowers", **extra}
    if scaling is not None:
        item["scaling"] = scaling
    return item


def parse(scaling, mode=SERVERLESS, monitoring=False, **extra):
    raw = {"nodes": NODES, "serving": {"deploymentMode": mode}, "models": [model(scaling, **extra)]}
    if monitoring:
        raw.update(MONITORING)
    return parse_stack_config(raw, has_secret_private_key=True, secret_keys=SECRETS)


def problems(scaling, mode=SERVERLESS, monitoring=False, **extra):
    with pytest.raises(ConfigError) as caught:
        parse(scaling, mode, monitoring, **extra)
    return caught.value.problems


def only(found, key):
    lines = [p for p in found if p.startswith(f"kserve-cluster:{key} ")]
    assert lines, found
    return lines[0]


KEY = "models[0] (tf-flower).scaling"


# --- bad inputs: one rule each --------------------------------------------------------------

def test_scaling_must_be_a_mapping():
    assert "must be an object" in only(problems("fast"), KEY)


def test_unknown_key_with_a_suggestion():
    line = only(problems({"maxReplica": 3}), f"{KEY}.maxReplica")
    assert "did you mean 'maxReplicas'" in line


def test_unknown_metric_with_a_suggestion():
    line = only(problems({"metric": "cpus"}), f"{KEY}.metric")
    assert "unknown scaling metric; did you mean 'cpu'" in line


@pytest.mark.parametrize("mode,offered", [(SERVERLESS, "concurrency, rps or cpu"),
                                           (RAW_DEPLOYMENT, "cpu, memory, rps or gpu")])
def test_an_unknown_metric_is_offered_only_what_the_mode_accepts(mode, offered):
    line = only(problems({"metric": "latency"}, mode), f"{KEY}.metric")
    assert line.endswith(f"unknown scaling metric. Fix: use {offered} "
                         f"(the metrics of deploymentMode {mode}).")


def test_a_guess_is_one_the_mode_accepts():
    # memory is refused in Serverless: a misspelt memory is not offered it there.
    assert "did you mean" not in only(problems({"metric": "memry"}), f"{KEY}.metric")
    assert "did you mean 'memory'" in only(problems({"metric": "memry"}, RAW_DEPLOYMENT),
                                           f"{KEY}.metric")


def test_min_replicas_zero_is_serverless_only():
    line = only(problems({"minReplicas": 0}, RAW_DEPLOYMENT), f"{KEY}.minReplicas")
    assert "scale to zero is Serverless only" in line and "Fix: give minReplicas: 1" in line
    assert parse({"minReplicas": 0}).serving.models[0].scaling.min_replicas == 0


def test_min_replicas_zero_needs_knatives_own_autoscaler():
    line = only(problems({"minReplicas": 0, "metric": "cpu"}, monitoring=True), f"{KEY}.minReplicas")
    assert "cannot scale to zero" in line


def test_replicas_are_whole_numbers_in_range():
    assert "not a whole number" in only(problems({"minReplicas": 1.5}), f"{KEY}.minReplicas")
    assert "outside the range 1-1000" in only(problems({"maxReplicas": 0}), f"{KEY}.maxReplicas")
    assert "outside the range 0-1000" in only(problems({"minReplicas": -1}), f"{KEY}.minReplicas")


def test_max_replicas_at_least_min_replicas():
    line = only(problems({"minReplicas": 3, "maxReplicas": 2}), f"{KEY}.maxReplicas")
    assert "less than minReplicas (3)" in line and "at least 3" in line


def test_target_must_be_above_zero():
    line = only(problems({"metric": "rps", "target": 0}), f"{KEY}.target")
    assert "outside the range 1-" in line and "requests per second per replica" in line
    assert "not a whole number" in only(problems({"metric": "concurrency", "target": 2.5}),
                                        f"{KEY}.target")


def test_cpu_target_is_a_percentage():
    line = only(problems({"metric": "cpu", "target": 150, "maxReplicas": 3}, RAW_DEPLOYMENT,
                         monitoring=True), f"{KEY}.target")
    assert "outside the range 1-100" in line and "percent of its request" in line


def test_target_without_metric_is_checked_against_the_modes_default():
    line = only(problems({"target": 101, "maxReplicas": 3}, RAW_DEPLOYMENT, monitoring=True),
                f"{KEY}.target")
    assert "no metric given: cpu is used" in line


def test_memory_is_refused_in_serverless():
    line = only(problems({"metric": "memory"}), f"{KEY}.metric")
    assert "memory cannot be used in Serverless mode" in line and "MiB" in line


def test_concurrency_is_refused_in_raw_deployment():
    line = only(problems({"metric": "concurrency"}, RAW_DEPLOYMENT), f"{KEY}.metric")
    assert "Knative's autoscaler metric" in line and "use rps" in line


def test_container_concurrency_is_serverless_only():
    line = only(problems({"containerConcurrency": 4}, RAW_DEPLOYMENT), f"{KEY}.containerConcurrency")
    assert "queue-proxy" in line


def test_container_concurrency_range():
    line = only(problems({"containerConcurrency": 1001}), f"{KEY}.containerConcurrency")
    assert "outside the range 0-1000" in line


@pytest.mark.parametrize("mode,scaling", [
    (RAW_DEPLOYMENT, {"metric": "rps", "target": 10, "maxReplicas": 4}),
    (RAW_DEPLOYMENT, {"metric": "cpu", "maxReplicas": 4}),
    (RAW_DEPLOYMENT, {"metric": "memory", "target": 80, "maxReplicas": 4}),
    (SERVERLESS, {"metric": "cpu", "target": 60}),
])
def test_hpa_metrics_need_the_metrics_api_of_monitoring(mode, scaling):
    line = only(problems(scaling, mode), f"{KEY}.metric")
    assert "prometheus-adapter" in line and "monitoring: {enabled: true}" in line
    parse(scaling, mode, monitoring=True)  # fine with monitoring


def test_every_problem_reported_together():
    found = problems({"minReplicas": 0, "maxReplicas": 0, "metric": "concurrency",
                      "containerConcurrency": 2}, RAW_DEPLOYMENT)
    keys = {p.split(" = ")[0] for p in found}
    assert {f"kserve-cluster:{KEY}.{k}" for k in
            ("minReplicas", "maxReplicas", "metric", "containerConcurrency")} <= keys


def test_warnings_for_settings_without_effect():
    config = parse({"metric": "cpu", "target": 70}, RAW_DEPLOYMENT, monitoring=True)
    assert any("leave the autoscaler no room" in w for w in config.warnings)
    config = parse({"metric": "concurrency", "target": 10, "containerConcurrency": 4})
    assert any("above containerConcurrency (4)" in w for w in config.warnings)


# --- what reaches the InferenceService -------------------------------------------------------

def fields(scaling, mode=SERVERLESS, monitoring=False, rollout=True, **extra):
    parsed = parse(scaling, mode, monitoring, **extra).serving.models[0]
    return inference_service_spec(parsed, rollout=rollout)["predictor"], model_annotations(parsed)


def test_serverless_fields_and_kpa_class():
    predictor, annotations = fields({"minReplicas": 0, "maxReplicas": 5, "metric": "rps",
                                     "target": 20, "containerConcurrency": 8})
    assert {k: predictor[k] for k in ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget",
                                      "containerConcurrency")} == {
        "minReplicas": 0, "maxReplicas": 5, "scaleMetric": "rps", "scaleTarget": 20,
        "containerConcurrency": 8}
    assert annotations["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"


def test_serverless_cpu_uses_knatives_hpa_class():
    predictor, annotations = fields({"metric": "cpu", "target": 60, "maxReplicas": 4},
                                    monitoring=True)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("cpu", 60)
    assert annotations["autoscaling.knative.dev/class"] == "hpa.autoscaling.knative.dev"


def test_raw_cpu_is_kserves_hpa():
    predictor, annotations = fields({"minReplicas": 2, "maxReplicas": 6, "metric": "cpu",
                                     "target": 75}, RAW_DEPLOYMENT, monitoring=True)
    assert (predictor["scaleMetric"], predictor["scaleTarget"], predictor["maxReplicas"]) == \
        ("cpu", 75, 6)
    assert annotations["serving.kserve.io/autoscalerClass"] == "hpa"


def test_raw_rps_goes_to_our_own_hpa_not_to_kserve():
    predictor, annotations = fields({"minReplicas": 1, "maxReplicas": 4, "metric": "rps",
                                     "target": 30}, RAW_DEPLOYMENT, monitoring=True)
    assert "scaleMetric" not in predictor and "scaleTarget" not in predictor
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert annotations["serving.kserve.io/autoscalerClass"] == "external"


def test_no_scaling_leaves_the_spec_as_before():
    predictor, annotations = fields(None)
    assert set(predictor) == {"model"}
    assert annotations == {"pulumi.com/waitFor": "condition=Ready",
                           "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"}


def test_the_canary_revision_scales_by_the_same_settings():
    canary = {"storageUri": "gs://kfserving-examples/models/tensorflow/flowers-2",
              "trafficPercent": 10}
    first, _ = fields({"minReplicas": 1, "maxReplicas": 3}, rollout=False, canary=canary)
    rollout, _ = fields({"minReplicas": 1, "maxReplicas": 3}, rollout=True, canary=canary)
    assert rollout["canaryTrafficPercent"] == 10
    assert rollout["model"]["storageUri"].endswith("flowers-2")
    for predictor in (first, rollout):
        assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)


def test_mode_constants_match_the_config_module():
    from components.serving import config
    assert (sc.SERVERLESS, sc.RAW_DEPLOYMENT) == (config.SERVERLESS, config.RAW_DEPLOYMENT)


# --- scaling on GPU utilisation (RawDeployment, through prometheus-adapter) --------------------

GPU_NODES = NODES + [{"name": "gpu1", "address": "10.0.2.31", "role": "worker", "gpu": "nvidia"}]


def parse_gpu(scaling, mode=RAW_DEPLOYMENT, monitoring=True, gpus=1):
    extra = {"resources": {"cpu": "1", "memory": "4Gi", "gpu": gpus}} if gpus else {}
    raw = {"nodes": GPU_NODES, "serving": {"deploymentMode": mode},
           "models": [model(scaling, **extra)]}
    if monitoring:
        raw.update(MONITORING)
    return parse_stack_config(raw, has_secret_private_key=True, secret_keys=SECRETS)


def gpu_problems(scaling, **kwargs):
    with pytest.raises(ConfigError) as caught:
        parse_gpu(scaling, **kwargs)
    return caught.value.problems


def test_gpu_is_accepted_in_raw_deployment_with_monitoring_and_a_gpu():
    scaling = parse_gpu({"metric": "gpu", "target": 60, "maxReplicas": 3}).serving.models[0].scaling
    assert (scaling.autoscaler, scaling.effective_metric, scaling.target) == (
        sc.ADAPTER_HPA, "gpu", 60)


def test_gpu_is_refused_in_serverless_naming_the_fix():
    line = only(gpu_problems({"metric": "gpu", "maxReplicas": 3}, mode=SERVERLESS), f"{KEY}.metric")
    assert line.startswith(f"kserve-cluster:{KEY}.metric = 'gpu': ")
    assert "Knative owns the replicas" in line and "serving.deploymentMode: RawDeployment" in line


def test_gpu_is_refused_without_monitoring_naming_the_fix():
    line = only(gpu_problems({"metric": "gpu", "maxReplicas": 3}, monitoring=False), f"{KEY}.metric")
    assert "dcgm-exporter" in line and "prometheus-adapter" in line
    assert "monitoring: {enabled: true}" in line


def test_gpu_is_refused_on_a_model_without_gpus_naming_the_fix():
    line = only(gpu_problems({"metric": "gpu", "maxReplicas": 3}, gpus=0), f"{KEY}.metric")
    assert "the model has no GPU (resources.gpu)" in line and "resources.gpu: 1" in line


def test_gpu_target_is_a_percentage():
    line = only(gpu_problems({"metric": "gpu", "target": 101, "maxReplicas": 3}), f"{KEY}.target")
    assert "outside the range 1-100" in line and "GPU utilisation per replica in percent" in line


def test_raw_gpu_goes_to_our_own_hpa_not_to_kserve():
    parsed = parse_gpu({"minReplicas": 1, "maxReplicas": 2, "metric": "gpu",
                        "target": 70}).serving.models[0]
    predictor = inference_service_spec(parsed, rollout=True)["predictor"]
    assert "scaleMetric" not in predictor and "scaleTarget" not in predictor
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 2)
    assert model_annotations(parsed)["serving.kserve.io/autoscalerClass"] == "external"
