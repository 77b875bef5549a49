"""Validation of the serving keys: every error names the key, the value and the fix."""
import copy

import pytest

from components.serving.config import DEFAULT_MODELS, RAW_DEPLOYMENT
from components.stack_config import ConfigError, parse_stack_config

BASE = {"nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
                  {"name": "worker1", "address": "10.0.2.22", "role": "worker"}]}
FLOWER = {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
          "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}
RUNTIME = {"name": "custom-sklearn", "namespace": "kserve-test", "image": "kserve/sklearnserver:x",
           "args": ["--model_name={{.Name}}"], "env": {"PREDICT_PROBA": "True"},
           "modelFormats": [{"name": "sklearn", "version": "1"}]}


def parse(**keys):
    raw = copy.deepcopy(BASE)
    raw.update(copy.deepcopy(keys))
    return parse_stack_config(raw, has_secret_private_key=True)


def problems(**keys):
    with pytest.raises(ConfigError) as caught:
        parse(**keys)
    return caught.value.problems


def only(**keys):
    found = problems(**keys)
    assert len(found) == 1, found
    assert "Fix:" in found[0]
    return found[0]


def test_defaults():
    serving = parse().serving
    assert serving.deployment_mode == "Serverless" and serving.serverless
    assert serving.ingress_domain == "example.com"
    assert serving.ingress_node_port == 31903
    assert serving.models == DEFAULT_MODELS
    model = serving.models[0]
    assert (model.name, model.namespace, model.format) == ("tf-flower", "kserve-test", "tensorflow")
    assert (model.cpu, model.memory) == ("500m", "1Gi")


def test_unknown_mode():
    message = only(serving={"deploymentMode": "Raw"})
    assert message.startswith("kserve-cluster:serving.deploymentMode = 'Raw': unknown deployment mode")
    assert "Serverless" in message and "RawDeployment" in message and "Standard" in message


@pytest.mark.parametrize("given, mode", [("Knative", "Serverless"), ("Standard", "RawDeployment"),
                                         ("Serverless", "Serverless"),
                                         ("RawDeployment", "RawDeployment")])
def test_kserve_0_16_mode_names_are_accepted(given, mode):
    """KServe v0.16 renamed the modes; the stack key takes the names users know from either."""
    assert parse(serving={"deploymentMode": given}).serving.deployment_mode == mode


@pytest.mark.parametrize("port", [80, 29999, 32768])
def test_node_port_outside_range(port):
    message = only(serving={"ingressNodePort": port})
    assert "serving.ingressNodePort" in message and "outside the range 30000-32767" in message


@pytest.mark.parametrize("port", ["thirty-one", "31903", True, 31903.5])
def test_node_port_that_is_not_a_whole_number_says_so(port):
    message = only(serving={"ingressNodePort": port})
    assert "serving.ingressNodePort" in message and ": not a whole number." in message
    assert "outside" not in message


@pytest.mark.parametrize("uri", ["ftp://x/model", "/mnt/models", "flowers", 3])
def test_bad_storage_uri_scheme(uri):
    message = only(models=[{**FLOWER, "storageUri": uri}])
    assert message.startswith("kserve-cluster:models[0] (tf-flower).storageUri = ")
    assert "gs://" in message and "s3://" in message


@pytest.mark.parametrize("where", ["model", "canary"])
def test_oci_storage_is_refused_with_the_reason(where):
    # KServe serves oci:// only with modelcars on, and the program keeps them off on
    # every train (tests/test_chart_rendering.py checks the rendered inferenceservice-config).
    uri = "oci://quay.io/example/flowers-modelcar:1.0"
    model = {**FLOWER, "storageUri": uri} if where == "model" else \
        {**FLOWER, "canary": {"storageUri": uri, "trafficPercent": 10}}
    message = only(models=[model])
    key = "storageUri" if where == "model" else "canary.storageUri"
    assert message.startswith(f"kserve-cluster:models[0] (tf-flower).{key} = '{uri}': ")
    assert "cannot serve a model from a container image" in message
    assert "kserve.storage.enableModelcar" in message
    assert "Fix: put the model files" in message and "gs://" in message


@pytest.mark.parametrize("percent", [-1, 101, 12.5, "10"])
def test_traffic_percent_outside_0_100(percent):
    canary = {"storageUri": "gs://kfserving-examples/models/tensorflow/flowers-2",
              "trafficPercent": percent}
    message = only(models=[{**FLOWER, "canary": canary}])
    assert "models[0] (tf-flower).canary.trafficPercent" in message and "0 to 100" in message


@pytest.mark.parametrize("key,value", [("name", "TF_Flower"), ("namespace", "Kserve Test")])
def test_model_names_must_be_dns1123(key, value):
    message = only(models=[{**FLOWER, key: value}])
    assert f".{key} = {value!r}" in message and "DNS-1123" in message


@pytest.mark.parametrize("name", ["x-predictor-v2", "tf-predictor", "a-predictors"])
def test_a_model_name_with_predictor_is_refused_naming_the_model_and_the_fix(name):
    """KServe cuts the first '-predictor' out of the predictor's host to name the model's
    (kserve v0.13.1 reconcilers/ingress/ingress_reconciler.go:106)."""
    message = only(models=[{**FLOWER, "name": name}])
    assert f"models[0] ({name}).name = {name!r}" in message
    assert "-predictor" in message and "rename the model" in message
    if name == "x-predictor-v2":
        assert "x-v2-predictor" in message


def test_predictor_alone_or_inside_a_word_is_fine():
    parse(models=[{**FLOWER, "name": "predictor"}, {**FLOWER, "name": "mypredictor"}])


@pytest.mark.parametrize("key", ["name", "namespace", "format", "storageUri"])
def test_a_missing_model_key_is_required(key):
    model = dict(FLOWER)
    del model[key]
    message = only(models=[model])
    assert f".{key} = (not set): required." in message


def test_runtime_names_must_be_dns1123():
    message = only(runtimes=[{**RUNTIME, "name": "Custom.SKLearn"}])
    assert "runtimes[0] (Custom.SKLearn).name" in message


def test_one_runtime_name_twice_in_one_namespace_is_refused_naming_both():
    message = only(runtimes=[RUNTIME, {**RUNTIME, "image": "other:1"}])
    assert message.startswith("kserve-cluster:runtimes[1] (custom-sklearn).name = 'custom-sklearn'")
    assert "duplicates runtimes[0] (custom-sklearn) in namespace kserve-test" in message


def test_one_runtime_name_in_two_namespaces_is_fine_and_each_model_gets_its_own():
    serving = parse(runtimes=[RUNTIME, {**RUNTIME, "namespace": "ml"}],
                    models=[{**FLOWER, "format": "sklearn", "runtime": "custom-sklearn"},
                            {**FLOWER, "namespace": "ml", "format": "sklearn",
                             "runtime": "custom-sklearn"}]).serving
    assert [(r.namespace, r.name) for r in serving.runtimes] == [
        ("kserve-test", "custom-sklearn"), ("ml", "custom-sklearn")]
    assert [m.key for m in serving.models] == ["kserve-test/tf-flower", "ml/tf-flower"]


def test_unknown_model_format():
    message = only(models=[{**FLOWER, "format": "tensorflw"}])
    assert "models[0] (tf-flower).format = 'tensorflw': unknown model format; " \
        "did you mean 'tensorflow'?" in message


def test_custom_runtime_format_becomes_known():
    serving = parse(runtimes=[{**RUNTIME, "modelFormats": [{"name": "my-format"}]}],
                    models=[{**FLOWER, "format": "my-format"}]).serving
    assert serving.models[0].format == "my-format"


def test_model_naming_a_missing_runtime():
    message = only(models=[{**FLOWER, "runtime": "nope"}])
    assert "models[0] (tf-flower).runtime = 'nope'" in message


def test_model_runtime_must_serve_its_format_in_its_namespace():
    found = problems(runtimes=[RUNTIME], models=[{**FLOWER, "runtime": "custom-sklearn"}])
    assert any("does not serve format 'tensorflow'" in p for p in found)
    found = problems(runtimes=[{**RUNTIME, "namespace": "other"}],
                     models=[{**FLOWER, "format": "sklearn", "runtime": "custom-sklearn"}])
    assert any("lives in namespace other" in p for p in found)


def test_runtime_needs_image_and_formats():
    found = problems(runtimes=[{"name": "r", "namespace": "kserve-test"}])
    assert any("runtimes[0] (r).image = (not set): required." in p for p in found)
    assert any("runtimes[0] (r).modelFormats" in p for p in found)


def test_canary_needs_serverless():
    canary = {"storageUri": "gs://kfserving-examples/models/tensorflow/flowers-2", "trafficPercent": 10}
    message = only(serving={"deploymentMode": RAW_DEPLOYMENT}, models=[{**FLOWER, "canary": canary}])
    assert "models[0] (tf-flower).canary" in message and "deploymentMode Serverless" in message


def test_duplicate_models():
    message = only(models=[FLOWER, FLOWER])
    assert "models[1] (tf-flower).name = 'tf-flower': duplicates models[0] (tf-flower)" in message


def test_one_model_name_in_two_namespaces_is_fine():
    serving = parse(models=[FLOWER, {**FLOWER, "namespace": "ml"}]).serving
    assert [m.key for m in serving.models] == ["kserve-test/tf-flower", "ml/tf-flower"]


def test_unknown_serving_keys_are_errors():
    found = problems(serving={"nodePort": 31903}, models=[{**FLOWER, "storageURI": "x"}])
    assert any(p.startswith("kserve-cluster:serving.nodePort = 31903: unknown key") for p in found)
    assert any(p.startswith("kserve-cluster:models[0] (tf-flower).storageURI = ")
               and "did you mean 'storageUri'?" in p for p in found)


def test_bad_quantity_and_domain():
    found = problems(serving={"ingressDomain": "Not A Domain"},
                     models=[{**FLOWER, "resources": {"cpu": "half", "memory": "1Gi"}}])
    assert any("serving.ingressDomain" in p for p in found)
    assert any("models[0] (tf-flower).resources.cpu = 'half'" in p for p in found)


def test_model_cpu_written_in_bytes():
    found = problems(models=[{**FLOWER, "resources": {"cpu": "2Gi", "memory": "2Gi"}}])
    assert found == ["kserve-cluster:models[0] (tf-flower).resources.cpu = '2Gi': a byte amount, "
                     "not CPU cores. Fix: write cores, e.g. '1' or 500m (memory goes in "
                     "resources.memory)."]


def test_cluster_and_serving_problems_come_together():
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({"nodes": [], "serving": {"deploymentMode": "x"}},
                           has_secret_private_key=True)
    keys = [p.split(" = ")[0] for p in caught.value.problems]
    assert "kserve-cluster:nodes" in keys and "kserve-cluster:serving.deploymentMode" in keys


def test_two_models_whose_resource_names_would_collide_are_refused():
    message = only(models=[{**FLOWER, "namespace": "a-b", "name": "c"},
                           {**FLOWER, "namespace": "a", "name": "b-c"}])
    assert message.startswith("kserve-cluster:models[1] (b-c).name = 'b-c'")
    assert "a/b-c and a-b/c (models[0] (c)) would both be named 'a-b-c'" in message
